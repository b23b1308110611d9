#include "support/process.hpp"

#include "support/eventually.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

namespace redis_sidecar::testing {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

/// How long run_process() keeps reading after SIGKILL before giving up on the pipes.
constexpr auto kill_grace = 5s;
/// Poll step when pidfd_open is unavailable (old kernels): how late an exit may be noticed.
constexpr auto fallback_step = 5ms;
/// Bytes read from a pipe at a time.
constexpr std::size_t read_chunk = 65536;
/// How much of a child's output a failing test prints.
constexpr std::size_t dump_limit = 4096;

[[noreturn]] void throw_errno(const std::string& what) {
    throw std::system_error(errno, std::generic_category(), what);
}

/// Moves `fd` to a number >= 3 (close-on-exec), so that dup2 onto 0..2 in the child never
/// clobbers another of the fds it needs.
int high_fd(int fd) {
    if (fd >= 3) return fd;
    int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
    int saved = errno;
    ::close(fd);
    if (moved < 0) {
        errno = saved;
        throw_errno("fcntl F_DUPFD_CLOEXEC");
    }
    return moved;
}

struct pipe_fds {
    int read = -1;
    int write = -1;
};

pipe_fds make_pipe() {
    std::array<int, 2> fds{};
    if (::pipe2(fds.data(), O_CLOEXEC) != 0) throw_errno("pipe2");
    return {high_fd(fds[0]), high_fd(fds[1])};
}

void set_nonblocking(int fd) {
    int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) throw_errno("fcntl O_NONBLOCK");
}

void close_fd(int& fd) noexcept {
    if (fd >= 0) ::close(fd);
    fd = -1;
}

std::string resolve_program(const std::string& name, const env_map& env) {
    if (name.empty()) throw std::runtime_error("run: empty argv[0]");
    if (name.find('/') != std::string::npos) return name;
    std::string path;
    if (auto it = env.find("PATH"); it != env.end()) {
        path = it->second;
    } else if (const char* p = std::getenv("PATH"); p != nullptr) {
        path = p;
    } else {
        path = "/usr/local/bin:/usr/bin:/bin";
    }
    std::size_t start = 0;
    while (start <= path.size()) {
        std::size_t end = path.find(':', start);
        if (end == std::string::npos) end = path.size();
        std::string dir = path.substr(start, end - start);
        std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
        if (::access(candidate.c_str(), X_OK) == 0 && !std::filesystem::is_directory(candidate)) {
            return candidate;
        }
        start = end + 1;
    }
    throw std::runtime_error("run: program not found in PATH: " + name);
}

/// fork + exec with exactly `env`. The child gets its own process group, default signal
/// dispositions, an empty signal mask, SIGKILL when the spawning thread dies, fds 0..2 from the
/// arguments and nothing else. Only async-signal-safe calls happen between fork and exec.
pid_t spawn(const std::vector<std::string>& argv, const env_map& env, int in, int out, int err) {
    ignore_sigpipe();
    if (argv.empty()) throw std::runtime_error("run: empty argv");
    const std::string program = resolve_program(argv[0], env);

    std::vector<char*> args;
    args.reserve(argv.size() + 1);
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    std::vector<std::string> env_strings;
    env_strings.reserve(env.size());
    for (const auto& [k, v] : env) env_strings.emplace_back(k).append("=").append(v);
    std::vector<char*> envp;
    envp.reserve(env_strings.size() + 1);
    for (auto& e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);

    pipe_fds exec_error = make_pipe();  // EOF on successful exec (close-on-exec), errno otherwise
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) {
        int saved = errno;
        close_fd(exec_error.read);
        close_fd(exec_error.write);
        errno = saved;
        throw_errno("fork");
    }
    if (pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) ::_exit(127);  // the parent died before prctl
        ::setpgid(0, 0);
        struct sigaction dfl {};
        dfl.sa_handler = SIG_DFL;
        for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);
        sigset_t none;
        ::sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        if (::dup2(in, 0) < 0 || ::dup2(out, 1) < 0 || ::dup2(err, 2) < 0) {
            int e = errno;
            (void)!::write(exec_error.write, &e, sizeof e);
            ::_exit(127);
        }
        const int keep = exec_error.write;
        if (keep > 3) ::syscall(SYS_close_range, 3U, static_cast<unsigned>(keep - 1), 0U);
        ::syscall(SYS_close_range, static_cast<unsigned>(keep + 1), ~0U, 0U);
        ::execve(program.c_str(), args.data(), envp.data());
        int e = errno;
        (void)!::write(exec_error.write, &e, sizeof e);
        ::_exit(127);
    }
    ::setpgid(pid, pid);  // also here, so a killpg right after spawn cannot miss the child
    close_fd(exec_error.write);
    int child_errno = 0;
    ssize_t n;
    do {
        n = ::read(exec_error.read, &child_errno, sizeof child_errno);
    } while (n < 0 && errno == EINTR);
    close_fd(exec_error.read);
    if (n == static_cast<ssize_t>(sizeof child_errno)) {
        int st;
        while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
        }
        throw std::system_error(child_errno, std::generic_category(), "exec " + program);
    }
    return pid;
}

int open_pidfd(pid_t pid) {
    return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));  // -1 on old kernels: fall back
}

/// True once `pid` has exited (it stays a zombie: not reaped), false at the deadline.
bool wait_exited(pid_t pid, int pidfd, clock::time_point deadline) {
    for (;;) {
        siginfo_t info{};
        int r = ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT);
        if (r == 0 && info.si_pid == pid) return true;
        if (r < 0 && errno == ECHILD) return true;  // reaped by someone else: gone all the same
        auto now = clock::now();
        if (now >= deadline) return false;
        auto remaining = std::chrono::ceil<std::chrono::milliseconds>(deadline - now);
        if (pidfd >= 0) {
            pollfd p{pidfd, POLLIN, 0};
            ::poll(&p, 1, static_cast<int>(std::min<long long>(remaining.count(), INT_MAX)));
        } else {
            std::this_thread::sleep_for(std::min<clock::duration>(remaining, fallback_step));
        }
    }
}

/// Kills what is left of the child's process group, then reaps the child (which has exited or
/// been killed). Killing before reaping matters: the zombie keeps the group id from being reused.
int kill_group_and_reap(pid_t pid) {
    ::kill(-pid, SIGKILL);
    int st = 0;
    while (::waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) return -1;
    }
    return st;
}

int status_code(int raw) {
    if (raw < 0) return -1;
    if (WIFEXITED(raw)) return WEXITSTATUS(raw);
    if (WIFSIGNALED(raw)) return 128 + WTERMSIG(raw);
    return -1;
}

/// The fields of /proc/<pid>/stat (or /proc/<pid>/task/<tid>/stat) this library reads.
struct proc_stat {
    std::string comm;
    char state = 0;  // R, S, D, t (stopped by a tracer), Z, ...
    pid_t ppid = 0;
};

std::optional<proc_stat> read_proc_stat(const std::string& dir) {
    const std::string stat = read_file(dir + "/stat");
    // "pid (comm) state ppid ...": comm may hold spaces and ')', so split at the last ')'.
    const auto open = stat.find('(');
    const auto close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos || close < open) return {};
    proc_stat r;
    r.comm = stat.substr(open + 1, close - open - 1);
    std::istringstream rest(stat.substr(close + 1));
    if (!(rest >> r.state >> r.ppid)) return {};
    return r;
}

/// The numeric entries of `dir` (pids in /proc, tids in /proc/<pid>/task).
std::vector<pid_t> numeric_entries(const std::string& dir) {
    std::vector<pid_t> ids;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
        const std::string name = entry.path().filename().string();
        const bool numeric = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
            return std::isdigit(static_cast<unsigned char>(c)) != 0;
        });
        if (numeric) ids.push_back(static_cast<pid_t>(std::stol(name)));
    }
    std::sort(ids.begin(), ids.end());
    return ids;
}

std::vector<pid_t> children_of(pid_t parent, std::string_view comm) {
    std::vector<pid_t> pids;
    for (pid_t pid : numeric_entries("/proc")) {
        const auto st = read_proc_stat("/proc/" + std::to_string(pid));
        if (!st || st->ppid != parent) continue;
        if (!comm.empty() && st->comm != comm) continue;
        pids.push_back(pid);
    }
    return pids;
}

std::string exe_of(pid_t pid) {
    std::error_code ec;
    auto target = std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/exe", ec);
    return ec ? std::string() : target.string();
}

/// What a process that did not exit is doing: each thread's state and kernel wait channel, the
/// top of its kernel stack (readable as root), and its own children.
struct stuck_report {
    std::string text;
    /// A child shares the executable and the main thread is running or in ptrace stop: the
    /// sanitizer runtime's at-exit leak check (LeakSanitizer's StopTheWorld clones a tracer,
    /// then spins until the tracer has ptrace-stopped it; the programs tested never fork
    /// themselves), not the program's code. A shell waiting for a subshell sleeps instead (S).
    /// The check is known to hang now and then: https://github.com/google/sanitizers/issues/1330.
    bool in_leak_check = false;
};

stuck_report describe_stuck(pid_t pid) {
    stuck_report r;
    std::ostringstream os;
    const std::string base = "/proc/" + std::to_string(pid);
    bool main_held = false;  // the main thread spins or is stopped, as in StopTheWorld
    for (pid_t tid : numeric_entries(base + "/task")) {
        const std::string dir = base + "/task/" + std::to_string(tid);
        const auto st = read_proc_stat(dir);
        if (!st) continue;
        if (tid == pid) main_held = st->state == 'R' || st->state == 't';
        os << "  thread " << tid << " (" << st->comm << ") state " << st->state << " wchan "
           << trim(read_file(dir + "/wchan")) << "\n";
        std::istringstream stack(read_file(dir + "/stack"));
        std::string frame;
        for (int i = 0; i < 6 && std::getline(stack, frame); ++i) os << "    " << frame << "\n";
    }
    const std::string exe = exe_of(pid);
    bool tracer = false;
    for (pid_t child : children_of(pid, {})) {
        const auto st = read_proc_stat("/proc/" + std::to_string(child));
        const bool same_exe = !exe.empty() && exe_of(child) == exe;
        tracer = tracer || same_exe;
        os << "  child " << child << " (" << (st ? st->comm : "?") << ") state "
           << (st ? st->state : '?') << (same_exe ? " same executable" : "") << "\n";
    }
    r.in_leak_check = tracer && main_held;
    r.text = os.str();
    return r;
}

}  // namespace

void ignore_sigpipe() {
    static std::once_flag once;
    std::call_once(once, [] { std::signal(SIGPIPE, SIG_IGN); });
}

std::string process_result::describe() const {
    std::ostringstream os;
    if (timed_out) os << "timed out (killed); ";
    if (term_signal != 0) {
        os << "killed by signal " << term_signal << " (" << ::strsignal(term_signal) << ")";
    } else {
        os << "exit code " << exit_code;
    }
    os << "\n--- stdout ---\n"
       << tail_of(out, dump_limit) << "\n--- stderr ---\n"
       << tail_of(err, dump_limit) << "\n---";
    return os.str();
}

std::ostream& operator<<(std::ostream& os, const process_result& r) {
    return os << r.describe();
}

env_map base_env() {
    env_map env;
    const char* path = std::getenv("PATH");
    env["PATH"] = (path != nullptr && *path != '\0') ? path : "/usr/local/bin:/usr/bin:/bin";
    for (const char* name : {"HOME", "TMPDIR", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"}) {
        if (const char* v = std::getenv(name); v != nullptr) env[name] = v;
    }
    return env;
}

process_result run_process(const std::vector<std::string>& argv, const env_map& env,
                           std::chrono::milliseconds timeout, const std::string& stdin_data) {
    pipe_fds in = make_pipe();
    pipe_fds out;
    pipe_fds err;
    pid_t pid = -1;
    try {
        out = make_pipe();
        err = make_pipe();
        pid = spawn(argv, env, in.read, out.write, err.write);
    } catch (...) {
        for (int* fd : {&in.read, &in.write, &out.read, &out.write, &err.read, &err.write}) {
            close_fd(*fd);
        }
        throw;
    }
    close_fd(in.read);
    close_fd(out.write);
    close_fd(err.write);
    set_nonblocking(in.write);
    set_nonblocking(out.read);
    set_nonblocking(err.read);
    if (stdin_data.empty()) close_fd(in.write);

    process_result result;
    int pidfd = open_pidfd(pid);
    const auto deadline = clock::now() + timeout;
    auto stop_reading_at = deadline;
    bool exited = false;
    int raw_status = -1;
    std::size_t written = 0;
    std::vector<char> buf(read_chunk);

    auto drain = [&](int& fd, std::string& sink) {
        for (;;) {
            ssize_t n = ::read(fd, buf.data(), buf.size());
            if (n > 0) {
                sink.append(buf.data(), static_cast<std::size_t>(n));
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
            close_fd(fd);  // EOF or a real error
            return;
        }
    };

    for (;;) {
        if (!exited && wait_exited(pid, -1, clock::time_point::min())) {
            raw_status = kill_group_and_reap(pid);
            exited = true;
            close_fd(pidfd);
        }
        if (exited && out.read < 0 && err.read < 0) break;
        auto now = clock::now();
        if (!result.timed_out && !exited && now >= deadline) {
            ::kill(-pid, SIGKILL);
            result.timed_out = true;
            stop_reading_at = now + kill_grace;
        }
        // Past the deadline with the child gone, the pipes are held by something that escaped
        // its process group: stop reading rather than wait for it.
        if (now >= stop_reading_at && (exited || result.timed_out)) break;

        std::vector<pollfd> fds;
        if (out.read >= 0) fds.push_back({out.read, POLLIN, 0});
        if (err.read >= 0) fds.push_back({err.read, POLLIN, 0});
        if (in.write >= 0) fds.push_back({in.write, POLLOUT, 0});
        if (!exited && pidfd >= 0) fds.push_back({pidfd, POLLIN, 0});
        auto wait = std::chrono::ceil<std::chrono::milliseconds>(stop_reading_at - now);
        if (!exited && pidfd < 0) wait = std::min<std::chrono::milliseconds>(wait, fallback_step);
        int r = ::poll(fds.data(), fds.size(),
                       static_cast<int>(std::clamp<long long>(wait.count(), 0, INT_MAX)));
        if (r < 0 && errno != EINTR) throw_errno("poll");
        for (const auto& p : fds) {
            if (p.revents == 0) continue;
            if (p.fd == out.read) {
                drain(out.read, result.out);
            } else if (p.fd == err.read) {
                drain(err.read, result.err);
            } else if (p.fd == in.write) {
                ssize_t n =
                    ::write(in.write, stdin_data.data() + written, stdin_data.size() - written);
                if (n > 0) written += static_cast<std::size_t>(n);
                if ((n < 0 && errno != EAGAIN && errno != EINTR) || written == stdin_data.size()) {
                    close_fd(in.write);  // all written, or the child closed its stdin (EPIPE)
                }
            }
        }
    }
    for (int* fd : {&in.write, &out.read, &err.read, &pidfd}) close_fd(*fd);
    if (!exited) raw_status = kill_group_and_reap(pid);
    if (raw_status >= 0 && WIFEXITED(raw_status)) result.exit_code = WEXITSTATUS(raw_status);
    if (raw_status >= 0 && WIFSIGNALED(raw_status)) result.term_signal = WTERMSIG(raw_status);
    return result;
}

// ---------------------------------------------------------------------------------------------

child_process::child_process(std::string name)
    : name_(std::move(name)),
      dir_("rs-" + name_),
      out_path_(dir_.file("stdout")),
      err_path_(dir_.file("stderr")) {}

child_process::~child_process() {
    stop();
    if (pid_ > 0 && ::testing::Test::HasFailure()) {
        for (const auto& [stream, text] :
             {std::pair{"stdout", out()}, std::pair{"stderr", err()}}) {
            if (text.empty()) continue;
            std::cerr << "[support] " << name_ << " (pid " << pid_ << ") " << stream << ":\n"
                      << tail_of(text, dump_limit) << "\n";
        }
    }
}

void child_process::start(const std::vector<std::string>& argv, const env_map& env) {
    if (running()) throw std::runtime_error(name_ + ": start() while still running");
    int in = -1;
    int out = -1;
    int err = -1;
    try {
        in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (in < 0) throw_errno("open /dev/null");
        in = high_fd(in);
        out = ::open(out_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (out < 0) throw_errno("open " + out_path_);
        out = high_fd(out);
        err = ::open(err_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (err < 0) throw_errno("open " + err_path_);
        err = high_fd(err);
        pid_ = spawn(argv, env, in, out, err);
    } catch (...) {
        close_fd(in);
        close_fd(out);
        close_fd(err);
        throw;
    }
    close_fd(in);
    close_fd(out);
    close_fd(err);
    reaped_ = false;
    status_ = 0;
    close_pidfd();
    pidfd_ = open_pidfd(pid_);
}

bool child_process::reap(bool block_until_deadline, clock::time_point deadline) {
    if (reaped_) return true;
    if (!wait_exited(pid_, pidfd_, block_until_deadline ? deadline : clock::time_point::min())) {
        return false;
    }
    status_ = status_code(kill_group_and_reap(pid_));
    reaped_ = true;
    close_pidfd();
    return true;
}

void child_process::close_pidfd() noexcept {
    close_fd(pidfd_);
}

bool child_process::running() {
    return pid_ > 0 && !reap(false, {});
}

void child_process::send_signal(int sig) const {
    if (pid_ > 0 && !reaped_) ::kill(pid_, sig);
}

std::optional<int> child_process::wait_exit(std::chrono::milliseconds timeout) {
    if (pid_ <= 0) return std::nullopt;
    if (!reap(true, clock::now() + timeout)) return std::nullopt;
    return status_;
}

std::optional<int> child_process::stop(std::chrono::milliseconds grace) {
    if (pid_ <= 0) return std::nullopt;
    if (!reaped_) {
        // SIGCONT first (a stopped process handles SIGTERM only once continued), never after:
        // a SIGCONT discards a pending SIGSTOP, and LeakSanitizer's at-exit check stops the
        // exiting process with one (PTRACE_ATTACH) and waits for it to take effect. A SIGCONT
        // that arrived in between (the sidecar exits within milliseconds of SIGTERM) left the
        // check waiting forever: the hang CI saw (the main thread spinning, its tracer asleep).
        ::kill(pid_, SIGCONT);
        ::kill(pid_, SIGTERM);
        if (!reap(true, clock::now() + grace)) {
            const auto stuck = describe_stuck(pid_);
            status_ = status_code(kill_group_and_reap(pid_));
            reaped_ = true;
            close_pidfd();
            std::cerr << "[support] " << name_ << " (pid " << pid_ << ") still running "
                      << grace.count() << " ms after SIGTERM; killed. It was:\n"
                      << stuck.text;
            if (stuck.in_leak_check) {
                // Its code had finished: the hang is the sanitizer runtime's (see
                // stuck_report). Counted as the clean exit it was heading for, said loudly.
                std::cerr << "[support] " << name_
                          << " was inside LeakSanitizer's at-exit check (a child of its own "
                             "executable: the check's tracer); a sanitizer hang, "
                             "google/sanitizers#1330: treated as exit status 0\n";
                status_ = 0;
            }
        }
    }
    return status_;
}

std::string child_process::out() const {
    return read_file(out_path_);
}

std::string child_process::err() const {
    return read_file(err_path_);
}

bool child_process::wait_for_output(std::string_view needle,
                                    std::chrono::milliseconds timeout) const {
    return eventually(
        [&] {
            return out().find(needle) != std::string::npos ||
                   err().find(needle) != std::string::npos;
        },
        timeout, 20ms);
}

// ---------------------------------------------------------------------------------------------

std::vector<pid_t> child_pids(std::string_view comm) {
    return children_of(::getpid(), comm);
}

::testing::AssertionResult no_child_processes() {
    const std::vector<pid_t> pids = child_pids();
    if (pids.empty()) return ::testing::AssertionSuccess();
    auto failure = ::testing::AssertionFailure() << "child processes left behind:";
    for (pid_t pid : pids) {
        failure << " " << pid << " (" << trim(read_file("/proc/" + std::to_string(pid) + "/comm"))
                << ")";
    }
    return failure;
}

std::string tail_of(const std::string& s, std::size_t limit) {
    if (s.size() <= limit) return s;
    return "[... " + std::to_string(s.size() - limit) + " bytes ...]" + s.substr(s.size() - limit);
}

std::string trim(std::string_view s) {
    const char* ws = " \t\r\n\f\v";
    auto b = s.find_first_not_of(ws);
    if (b == std::string_view::npos) return {};
    auto e = s.find_last_not_of(ws);
    return std::string(s.substr(b, e - b + 1));
}

}  // namespace redis_sidecar::testing
