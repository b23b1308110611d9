#pragma once

#include <sys/types.h>
#include <string>
#include <string_view>

namespace redis_sidecar::testing {

/// A fresh, private (0700) directory under $TMPDIR (or /tmp), created with mkdtemp and removed
/// recursively when the object is destroyed. Set REDIS_SIDECAR_KEEP_TEMP=1 to keep it (its path
/// is then printed to stderr) when debugging a failing test. Paths stay short on purpose: unix
/// socket paths inside it must fit in sun_path (108 bytes).
class temp_dir {
  public:
    /// Creates the directory; `prefix` becomes the start of its name. Throws std::system_error.
    explicit temp_dir(std::string_view prefix = "rs-test");
    ~temp_dir();

    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    temp_dir(temp_dir&& other) noexcept;
    temp_dir& operator=(temp_dir&& other) noexcept;

    /// The absolute path of the directory, without a trailing slash.
    const std::string& path() const { return path_; }

    /// `path() + "/" + name`; does not create anything.
    std::string file(std::string_view name) const;

    /// Writes `content` to `name` inside the directory (created or truncated) with permission
    /// bits exactly `mode` (not subject to the umask) and returns the full path. Throws
    /// std::system_error.
    std::string write_file(std::string_view name, std::string_view content,
                           mode_t mode = 0600) const;

    /// The whole content of `name` inside the directory; empty if it does not exist.
    std::string read_file(std::string_view name) const;

  private:
    void remove() noexcept;

    std::string path_;
};

/// The whole content of the file at `path`; empty if it cannot be opened or read (a /proc file
/// of a process that exited meanwhile included).
std::string read_file(const std::string& path);

}  // namespace redis_sidecar::testing
