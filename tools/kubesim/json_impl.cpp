// The one TU that compiles Boost.JSON (header-only mode); everything else includes <boost/json.hpp>.
#include <boost/json/src.hpp>
