#include "support/temp_dir.hpp"

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <system_error>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace redis_sidecar::testing {
namespace {

[[noreturn]] void throw_errno(const std::string& what) {
    throw std::system_error(errno, std::generic_category(), what);
}

bool keep_temp() {
    const char* keep = std::getenv("REDIS_SIDECAR_KEEP_TEMP");
    return keep != nullptr && *keep != '\0' && std::string_view(keep) != "0";
}

}  // namespace

temp_dir::temp_dir(std::string_view prefix) {
    const char* tmp = std::getenv("TMPDIR");
    std::string base = (tmp != nullptr && *tmp != '\0') ? tmp : "/tmp";
    while (base.size() > 1 && base.back() == '/') base.pop_back();
    std::string templ = base + "/" + std::string(prefix) + "-XXXXXX";
    std::vector<char> buf(templ.begin(), templ.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data()) == nullptr) throw_errno("mkdtemp " + templ);
    path_ = buf.data();
}

temp_dir::~temp_dir() {
    remove();
}

temp_dir::temp_dir(temp_dir&& other) noexcept : path_(std::exchange(other.path_, {})) {}

temp_dir& temp_dir::operator=(temp_dir&& other) noexcept {
    if (this != &other) {
        remove();
        path_ = std::exchange(other.path_, {});
    }
    return *this;
}

void temp_dir::remove() noexcept {
    if (path_.empty()) return;
    if (keep_temp()) {
        std::cerr << "[support] keeping temp dir " << path_ << "\n";
    } else {
        std::error_code ec;  // Never throw from a destructor; a leftover dir is not a test failure.
        std::filesystem::remove_all(path_, ec);
    }
    path_.clear();
}

std::string temp_dir::file(std::string_view name) const {
    return path_ + "/" + std::string(name);
}

std::string temp_dir::write_file(std::string_view name, std::string_view content,
                                 mode_t mode) const {
    std::string full = file(name);
    int fd = ::open(full.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) throw_errno("open " + full);
    // fchmod: the mode must not depend on the umask (key files must be exactly 0600).
    bool ok = ::fchmod(fd, mode) == 0;
    std::size_t done = 0;
    while (ok && done < content.size()) {
        ssize_t n = ::write(fd, content.data() + done, content.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0)
            ok = false;
        else
            done += static_cast<std::size_t>(n);
    }
    int saved = errno;
    ::close(fd);
    if (!ok) {
        errno = saved;
        throw_errno("write " + full);
    }
    return full;
}

std::string temp_dir::read_file(std::string_view name) const {
    return testing::read_file(file(name));
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return {};
    try {
        return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    } catch (const std::exception&) {
        // libstdc++ throws when read() fails: /proc/PID/stat of a process that exited between
        // open and read gives ESRCH. Unreadable is empty, as the header says.
        return {};
    }
}

}  // namespace redis_sidecar::testing
