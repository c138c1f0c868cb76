// Reading hydra.conf. Hydra reads it with Perl's Config::General; this is
// the part of that format Hydra's settings use:
//
//   key = value            (or `key value`; spaces around `=` do not count)
//   key = "quoted value"   (the quotes are removed)
//   key = a long \         (a backslash at the end continues the line)
//         value
//   key <<EOT              (a here-document, up to a line `EOT`)
//   ...
//   EOT
//   # a comment            (also after a value; `\#` is a literal #)
//   <section>              (a block, closed by </section>; blocks nest;
//     key = value           `<a b>` is block `b` inside block `a`)
//   </section>
//   include other.conf     (Apache-style include, relative to this file;
//   <<include other.conf>>  also Config::General's own form)
//
// Keys and block names keep their case, as Config::General's defaults do.
// Where Config::General would turn a key given twice into a list, the last
// value wins here (no setting hydra-eval-jobset reads takes a list); blocks
// given twice are merged.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

namespace evolive::hydra {

// A file that cannot be read or does not parse; the message names the file
// and line.
struct ConfigError : std::runtime_error
{
    using std::runtime_error::runtime_error;
};

class ConfigSection
{
public:
    std::optional<std::string> get(const std::string & key) const;
    std::string get(const std::string & key, const std::string & fallback) const;
    // A block inside this one, or null.
    const ConfigSection * section(const std::string & name) const;

    std::map<std::string, std::string> values;
    std::map<std::string, std::shared_ptr<ConfigSection>> sections;
};

// Throws ConfigError.
ConfigSection parseConfigFile(const std::string & path);
// `text` as if read from `path` (includes are relative to its folder).
ConfigSection parseConfigText(const std::string & text, const std::string & path);

} // namespace evolive::hydra
