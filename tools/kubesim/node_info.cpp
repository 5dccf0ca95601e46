#include "tools/kubesim/node_info.hpp"

#include "tools/kubesim/util.hpp"

#include <fstream>
#include <sstream>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <unistd.h>

namespace podpipe::kubesim {
namespace {

std::string first_line_of(const char* path) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    while (!line.empty() && (line.back() == '\n' || line.back() == ' ' || line.back() == '\r'))
        line.pop_back();
    return line;
}

std::string lower(std::string s) {
    for (auto& c : s)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

/// PRETTY_NAME of /etc/os-release, unquoted.
std::string os_image() {
    std::ifstream in("/etc/os-release");
    for (std::string line; std::getline(in, line);)
        if (line.starts_with("PRETTY_NAME=")) {
            std::string v = line.substr(12);
            if (v.size() >= 2 && (v.front() == '"' || v.front() == '\''))
                v = v.substr(1, v.size() - 2);
            return v;
        }
    return "Linux";
}

/// GOARCH of a uname machine.
std::string go_arch(std::string_view m) {
    if (m == "x86_64")
        return "amd64";
    if (m == "aarch64" || m == "arm64")
        return "arm64";
    if (m.starts_with("arm"))
        return "arm";
    if (m == "ppc64le" || m == "s390x" || m == "riscv64")
        return std::string(m);
    return std::string(m);
}

machine_facts read_facts() {
    machine_facts f;
    f.machine_id = first_line_of("/etc/machine-id");
    f.system_uuid = lower(first_line_of("/sys/class/dmi/id/product_uuid"));
    f.boot_id = first_line_of("/proc/sys/kernel/random/boot_id");
    if (f.system_uuid.empty())
        f.system_uuid = f.machine_id.size() == 32
                            ? f.machine_id.substr(0, 8) + "-" + f.machine_id.substr(8, 4) + "-" +
                                  f.machine_id.substr(12, 4) + "-" + f.machine_id.substr(16, 4) +
                                  "-" + f.machine_id.substr(20)
                            : random_uuid();
    if (f.machine_id.empty())
        f.machine_id = random_hex(32);
    if (f.boot_id.empty())
        f.boot_id = random_uuid();
    utsname u{};
    if (uname(&u) == 0) {
        f.kernel_version = u.release;
        f.architecture = go_arch(u.machine);
    }
    f.os_image = os_image();
    f.cpus = std::max(1L, sysconf(_SC_NPROCESSORS_ONLN));
    std::ifstream mem("/proc/meminfo");
    for (std::string key; mem >> key;) {
        unsigned long long kib = 0;
        mem >> kib;
        if (key == "MemTotal:") {
            f.memory_bytes = kib * 1024;
            break;
        }
        mem.ignore(1 << 16, '\n');
    }

    struct statvfs vfs {};

    if (statvfs("/", &vfs) == 0)
        f.storage_bytes = static_cast<unsigned long long>(vfs.f_blocks) * vfs.f_frsize;
    return f;
}

json::object condition(const char* type, const char* status, const char* reason,
                       const char* message) {
    std::string now = now_rfc3339();
    return json::object{{"type", type},
                        {"status", status},
                        {"lastHeartbeatTime", now},
                        {"lastTransitionTime", now},
                        {"reason", reason},
                        {"message", message}};
}

} // namespace

const machine_facts& this_machine() {
    static const machine_facts facts = read_facts();
    return facts;
}

json::object node_status(const std::string& name, const std::string& internal_ip) {
    const machine_facts& m = this_machine();
    // Quantities as the kubelet prints them: memory in Ki, ephemeral storage in Ki (capacity)
    // and bytes (allocatable); allocatable = capacity minus the default hard eviction thresholds
    // (memory.available 100Mi, nodefs.available 10%), no reservations.
    const unsigned long long mem_ki = m.memory_bytes / 1024;
    const unsigned long long alloc_mem_ki = mem_ki > 102400 ? mem_ki - 102400 : 0;
    const unsigned long long storage_ki = m.storage_bytes / 1024;
    const unsigned long long alloc_storage = m.storage_bytes - m.storage_bytes / 10;
    json::object capacity{{"cpu", std::to_string(m.cpus)},
                          {"ephemeral-storage", std::to_string(storage_ki) + "Ki"},
                          {"hugepages-1Gi", "0"},
                          {"hugepages-2Mi", "0"},
                          {"memory", std::to_string(mem_ki) + "Ki"},
                          {"pods", "110"}};
    json::object allocatable = capacity;
    allocatable["ephemeral-storage"] = std::to_string(alloc_storage);
    allocatable["memory"] = std::to_string(alloc_mem_ki) + "Ki";
    return json::object{
        {"capacity", capacity},
        {"allocatable", allocatable},
        {"conditions",
         json::array{
             condition("MemoryPressure", "False", "KubeletHasSufficientMemory",
                       "kubelet has sufficient memory available"),
             condition("DiskPressure", "False", "KubeletHasNoDiskPressure",
                       "kubelet has no disk pressure"),
             condition("PIDPressure", "False", "KubeletHasSufficientPID",
                       "kubelet has sufficient PID available"),
             condition("Ready", "True", "KubeletReady", "kubelet is posting ready status")}},
        {"addresses", json::array{json::object{{"type", "InternalIP"}, {"address", internal_ip}},
                                  json::object{{"type", "Hostname"}, {"address", name}}}},
        {"daemonEndpoints", json::object{{"kubeletEndpoint", json::object{{"Port", 10250}}}}},
        {"nodeInfo", json::object{{"machineID", m.machine_id},
                                  {"systemUUID", m.system_uuid},
                                  {"bootID", m.boot_id},
                                  {"kernelVersion", m.kernel_version},
                                  {"osImage", m.os_image},
                                  {"containerRuntimeVersion", "containerd://1.7.24"},
                                  {"kubeletVersion", "v1.32.0"},
                                  {"kubeProxyVersion", ""},
                                  {"operatingSystem", "linux"},
                                  {"architecture", m.architecture}}}};
}

} // namespace podpipe::kubesim
