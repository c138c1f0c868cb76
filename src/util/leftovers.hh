// Files and directories that a process writes under a temporary name
// carrying its process id (`NAME.tmp-PID`, `NAME.download-PID-N`) and
// renames once complete. A process that died on the way leaves them
// behind; a later one removes them when it starts.
#pragma once

#include <string>
#include <vector>

namespace evolive {

// Removes the entries of `dir` (files, or whole directories) whose name has
// one of `markers` (".tmp-") followed by the id of a process that no longer
// runs. What a running process is writing is left alone; a missing `dir` is
// nothing to do. Returns what was removed.
std::vector<std::string> removeLeftovers(const std::string & dir, const std::vector<std::string> & markers);

} // namespace evolive
