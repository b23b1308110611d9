#pragma once

// Reading figures out of the sidecar's /metrics text in black-box tests.

#include <sstream>
#include <string>

namespace redis_sidecar::testing {

/// The sum of every sample of a metric family in /metrics text (all label sets).
inline double metric_sum(const std::string& text, const std::string& name) {
    double sum = 0;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
        if (line.rfind(name, 0) != 0) continue;
        const auto rest = line.substr(name.size());
        if (!rest.empty() && rest[0] != ' ' && rest[0] != '{') continue;  // a longer name
        sum += std::stod(line.substr(line.rfind(' ') + 1));
    }
    return sum;
}

}  // namespace redis_sidecar::testing
