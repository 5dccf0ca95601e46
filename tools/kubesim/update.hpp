// update: PUT and PATCH of pods and secrets (README "PATCH and PUT"), as the API server's update
// and patch handlers do them: the new object from the body or the patch, checkName, the
// resourceVersion precondition (409 Conflict), BeforeUpdate (system fields kept, pod status kept),
// update validation (validation.hpp), no-op updates not written, dryRun=All, fieldValidation.
// The handler itself is api_server::update_object (update.cpp).
#pragma once

#include <cstddef>
#include <string>
#include <variant>

#include <boost/json.hpp>

namespace podpipe::kubesim {

/// The pod spec defaults of SetDefaults_Pod / SetDefaults_Container that kubesim applies on
/// create and on update: pull policy, termination message, protocol, restartPolicy, grace, DNS
/// policy, scheduler, service account, securityContext, enableServiceLinks.
void default_pod_spec(boost::json::object& spec);

/// A Secret's `stringData` merged into `data` (base64) and `data` checked as strict base64, as
/// the v1 decode and conversion do on create and update; the decoded size, or the decode error
/// (`illegal base64 data in data.KEY`).
std::variant<std::size_t, std::string> secret_data(boost::json::object& secret);

} // namespace podpipe::kubesim
