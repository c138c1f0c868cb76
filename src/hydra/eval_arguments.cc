#include "eval_arguments.hh"

#include "hash.hh"

namespace evolive::hydra {

namespace {

// The text between the quotes of a Nix string. Hydra's script inserts
// values as they are; escaping changes nothing for values without `"`,
// `\` or `${`, and keeps those from breaking out of the string.
std::string escaped(const std::string & s)
{
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c == '"' || c == '\\' || (c == '$' && i + 1 < s.size() && s[i + 1] == '{')) out += '\\';
        out += c;
    }
    return out;
}

std::string quoted(const std::string & s)
{
    return "\"" + escaped(s) + "\"";
}

} // namespace

std::string inputAttrSet(const FetchedInput & in)
{
    std::string s = "{ outPath = builtins.storePath " + in.storePath.value_or("") + "; inputType = " + quoted(in.type);
    if (in.uri) s += "; uri = " + quoted(*in.uri);
    if (in.revision) s += "; rev = " + quoted(*in.revision);
    if (in.revCount) s += "; revCount = " + std::to_string(*in.revCount);
    if (in.gitTag) s += "; gitTag = " + quoted(*in.gitTag);
    if (in.shortRev) s += "; shortRev = " + quoted(*in.shortRev);
    if (in.version) s += "; version = " + quoted(*in.version);
    if (in.outputName) s += "; outputName = " + quoted(*in.outputName);
    if (in.drvPath) s += "; drvPath = builtins.storePath " + *in.drvPath;
    return s + ";}";
}

std::vector<std::string> inputsToArgs(const InputInfo & inputs)
{
    std::vector<std::string> args;
    for (auto & [name, alts] : inputs) {
        if (alts.size() == 1 && alts[0].storePath) args.insert(args.end(), {"-I", name + "=" + *alts[0].storePath});
        if (alts.size() != 1) throw InputsError("multiple jobset input alternatives are no longer supported");
        auto & alt = alts[0];
        if (alt.type == "string") {
            args.insert(args.end(), {"--argstr", name, alt.value.value_or("")});
        } else if (alt.type == "boolean" || alt.type == "nix") {
            args.insert(args.end(), {"--arg", name, alt.value.value_or("")});
        } else if (alt.type == "eval") {
            // Job names are attribute paths: their dots make nested sets.
            std::string s = "{ ";
            for (auto & [job, path] : alt.jobs.value_or(std::map<std::string, std::string>{}))
                s += job + " = builtins.storePath " + path + "; ";
            args.insert(args.end(), {"--arg", name, s + "}"});
        } else {
            args.insert(args.end(), {"--arg", name, inputAttrSet(alt)});
        }
    }
    return args;
}

std::vector<std::string> allowedPathArgs(const InputInfo & inputs)
{
    std::vector<std::string> args;
    size_t n = 0;
    for (auto & [name, alts] : inputs)
        for (auto & alt : alts)
            for (auto & [job, path] : alt.jobs.value_or(std::map<std::string, std::string>{}))
                args.insert(args.end(), {"-I", "__evolive_eval_input_" + std::to_string(n++) + "=" + path});
    return args;
}

std::string argumentsHash(const std::optional<std::string> & nixExprInput, const std::optional<std::string> & nixExprPath,
                          const std::vector<std::string> & args)
{
    std::string joined = nixExprInput.value_or("") + " " + nixExprPath.value_or("");
    for (auto & a : args) joined += " " + a;
    return nix::sha256Hex(joined);
}

} // namespace evolive::hydra
