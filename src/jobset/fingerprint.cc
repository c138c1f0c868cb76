#include "fingerprint.hh"

#include "hash.hh"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <vector>

namespace evolive {

namespace fs = std::filesystem;
using nlohmann::json;

std::string hashDirectory(const std::string & root)
{
    std::vector<fs::path> entries;
    for (auto & entry : fs::recursive_directory_iterator(root)) entries.push_back(entry.path());
    std::sort(entries.begin(), entries.end());

    nix::Sha256Sink hash;
    auto feed = [&](const std::string & s) {
        // Length-prefixed, so that no two trees give the same byte stream.
        uint64_t n = s.size();
        hash({(const char *) &n, sizeof n});
        hash(s);
    };
    for (auto & p : entries) {
        auto rel = fs::relative(p, root).string();
        auto status = fs::symlink_status(p);
        if (fs::is_symlink(status)) {
            feed("symlink");
            feed(rel);
            feed(fs::read_symlink(p).string());
        } else if (fs::is_directory(status)) {
            feed("directory");
            feed(rel);
        } else if (fs::is_regular_file(status)) {
            bool executable = (status.permissions() & fs::perms::owner_exec) != fs::perms::none;
            feed(executable ? "executable" : "regular");
            feed(rel);
            std::ifstream in(p, std::ios::binary);
            std::string contents((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
            feed(nix::sha256Hex(contents));
        }
    }
    return nix::toBase16(hash.finish());
}

json pinnedInput(const ResolvedInput & input)
{
    json i{{"type", inputTypeName(input.spec.type)}};
    switch (input.spec.type) {
    case InputType::Git:
        i["url"] = input.spec.git.url;
        i["rev"] = input.git->rev;
        i["shallow"] = input.spec.git.shallow;
        i["submodules"] = input.spec.git.submodules;
        break;
    case InputType::Path:
        i["path"] = input.spec.path;
        i["contentHash"] = input.contentHash;
        break;
    default:
        i["value"] = input.spec.value;
    }
    return i;
}

json resultOptions(const EvalOptions & o)
{
    return json{{"meta", o.meta},
                {"constituents", o.constituents},
                {"forceRecurse", o.forceRecurse},
                {"checkCacheStatus", o.checkCacheStatus},
                {"showTrace", o.showTrace},
                {"evaluator", o.evaluator}};
}

json fingerprintDocument(const Jobset & jobset, const std::map<std::string, ResolvedInput> & inputs,
                         const EvalRestrictions & restrictions)
{
    json ins = json::object();
    for (auto & [name, input] : inputs) ins[name] = pinnedInput(input);
    auto & o = jobset.options;
    // Names, not values, of the variables let through: the values are the
    // server's (secrets, perhaps), and the fingerprint is published.
    auto sorted = [](std::vector<std::string> v) {
        std::sort(v.begin(), v.end());
        v.erase(std::unique(v.begin(), v.end()), v.end());
        return v;
    };
    return json{
        {"version", 2},
        {"restrictions",
         {{"restrictEval", restrictions.restrictEval},
          {"allowedUris", sorted(restrictions.allowedUris)},
          {"importFromDerivation", restrictions.importFromDerivation},
          {"evaluatorEnv", sorted(restrictions.evaluatorEnv)}}},
        {"inputs", ins},
        {"expression", {{"input", jobset.expression.input}, {"path", jobset.expression.path}}},
        {"options", resultOptions(o)},
    };
}

std::string fingerprintOf(const json & document)
{
    return nix::sha256Hex(document.dump());
}

} // namespace evolive
