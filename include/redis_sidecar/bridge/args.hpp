#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace redis_sidecar::bridge {

/// `frame` without the empty commands Redis ignores before a command (`*0`, `*-N`, blank
/// lines), which the scanner counts into the next frame's bytes.
std::string_view skip_empty_commands(std::string_view frame);

/// The arguments of one multibulk command the scanner has already validated (empty `*0`
/// commands before it are skipped). For the few commands the bridge answers itself.
std::vector<std::string> split_multibulk(std::string_view frame);

/// The arguments of one inline command line (blank lines before it are skipped), split like
/// Redis' sdssplitargs: white space separates, "double quotes" take \n \r \t \b \a \\ \" and
/// \xHH escapes, 'single quotes' take \'.
std::vector<std::string> split_inline(std::string_view frame);

}  // namespace redis_sidecar::bridge
