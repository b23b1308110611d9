#pragma once

#include "support/temp_dir.hpp"

#include <gtest/gtest.h>

#include <sys/types.h>
#include <chrono>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace redis_sidecar::testing {

/// An environment for a child process: variable name to value.
using env_map = std::map<std::string, std::string>;

/// How a process run by run_process() ended, and what it printed.
struct process_result {
    /// The exit status if the process exited normally, -1 otherwise.
    int exit_code = -1;
    /// The signal that ended the process, 0 if it exited normally.
    int term_signal = 0;
    /// True if the process was killed because it outlived its timeout.
    bool timed_out = false;
    /// Everything the process wrote to stdout.
    std::string out;
    /// Everything the process wrote to stderr.
    std::string err;

    /// Exited normally with status 0 within the timeout.
    bool ok() const { return !timed_out && exit_code == 0; }
    /// stdout followed by stderr, for "the output mentions X" checks.
    std::string output() const { return out + err; }
    /// One human-readable paragraph (status, stdout, stderr) for assertion messages.
    std::string describe() const;
};

/// Prints describe(), so `EXPECT_TRUE(r.ok()) << r;` shows what happened.
std::ostream& operator<<(std::ostream& os, const process_result& r);

/// A minimal environment to pass to children: PATH (the test's, or /usr/local/bin:/usr/bin:/bin),
/// HOME and TMPDIR (when set), and the sanitizer options ASAN_OPTIONS, UBSAN_OPTIONS and
/// LSAN_OPTIONS (when set). Nothing else of the test's environment leaks into a child.
env_map base_env();

/// Runs `argv` to completion with exactly `env` as its environment (nothing is inherited),
/// writes `stdin_data` to its stdin and then closes it, and captures stdout and stderr separately
/// (both pipes are polled, so any amount of output is fine).
///
/// argv[0] without a '/' is looked up in env's PATH (or the test's PATH if env has none). The
/// child runs in its own process group; at `timeout` the whole group gets SIGKILL and
/// `timed_out` is set, and whatever the process leaves behind in its group when it exits is
/// killed too. Throws std::runtime_error if the program cannot be found or executed.
process_result run_process(const std::vector<std::string>& argv, const env_map& env,
                           std::chrono::milliseconds timeout, const std::string& stdin_data = {});

/// A long-running child process (the sidecar binary, a server) with stdout and stderr going to
/// files in its own temp dir, readable at any time. Not thread-safe.
///
/// The child runs in its own process group and gets SIGKILL if the thread that started it dies
/// (PR_SET_PDEATHSIG), so a crashing or aborted test binary does not leave it running: start
/// children from the test's own thread, never from a helper thread that exits before them.
/// The destructor stops the child (see stop()).
class child_process {
  public:
    /// `name` names the temp dir and labels the output dumped when a test fails.
    explicit child_process(std::string name = "child");
    ~child_process();

    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;

    /// Starts `argv` with exactly `env` as its environment and stdin from /dev/null. Output is
    /// appended to the same files across starts. Throws std::runtime_error if the program cannot
    /// be executed or a child is still running.
    void start(const std::vector<std::string>& argv, const env_map& env);

    /// The child's pid (also its process group id); -1 before the first start().
    pid_t pid() const { return pid_; }

    /// True if started and not exited. Reaps the child if it has exited.
    bool running();

    /// Sends `sig` to the child (not its group). Does nothing once it has been reaped.
    void send_signal(int sig) const;

    /// Waits up to `timeout` for the child to exit; reaps it. Returns its exit status, or
    /// 128 + signal number if a signal ended it; nullopt if it is still running at the deadline.
    /// Returns the stored status if it was already reaped; nullopt if it was never started.
    std::optional<int> wait_exit(std::chrono::milliseconds timeout);

    /// SIGCONT (in case it is stopped) then SIGTERM, up to `grace` for it to exit, then SIGKILL
    /// to its whole process group; always reaps. Returns the status as wait_exit() does. A child
    /// still running at the deadline is described on stderr (threads, states, kernel stacks);
    /// one caught in LeakSanitizer's at-exit check (a known sanitizer hang) counts as status 0.
    std::optional<int> stop(std::chrono::milliseconds grace = std::chrono::seconds(2));

    /// Everything written to stdout / stderr so far.
    std::string out() const;
    std::string err() const;
    const std::string& out_path() const { return out_path_; }
    const std::string& err_path() const { return err_path_; }

    /// Polls until `needle` appears in stdout or stderr; false at the deadline.
    bool wait_for_output(std::string_view needle, std::chrono::milliseconds timeout) const;

  private:
    bool reap(bool block_until_deadline, std::chrono::steady_clock::time_point deadline);
    void close_pidfd() noexcept;

    std::string name_;
    temp_dir dir_;
    std::string out_path_;
    std::string err_path_;
    pid_t pid_ = -1;
    int pidfd_ = -1;
    bool reaped_ = true;
    int status_ = 0;  // exit status or 128 + signal, once reaped
};

/// Pids of this process's children (zombies included), optionally only those whose command
/// name (/proc/PID/comm) is `comm`. For checking that nothing was left behind.
std::vector<pid_t> child_pids(std::string_view comm = {});

/// Success if this process has no children left (running or zombie); otherwise a failure
/// listing their pids and command names. For a fixture's TearDown:
///     EXPECT_TRUE(no_child_processes());
::testing::AssertionResult no_child_processes();

/// `s` without leading and trailing white space (redis-cli ends its output with a newline).
std::string trim(std::string_view s);

/// The last `limit` bytes of `s` after a "[... N bytes ...]" mark (all of it when shorter):
/// for dumps of logs and output.
std::string tail_of(const std::string& s, std::size_t limit);

/// Sets SIGPIPE to SIG_IGN in this process (idempotent), so writing to a closed pipe or socket
/// is an EPIPE error instead of death. Every spawning function of this library calls it; children
/// get default dispositions back.
void ignore_sigpipe();

}  // namespace redis_sidecar::testing
