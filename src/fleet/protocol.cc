#include "protocol.hh"

#include <stdexcept>

namespace evolive::fleet {

using nlohmann::json;

namespace {

InputType typeNamed(const std::string & name)
{
    for (auto t : {InputType::Git, InputType::Path, InputType::Nix, InputType::Json, InputType::String, InputType::Boolean})
        if (inputTypeName(t) == name) return t;
    throw std::runtime_error("a chunk's input has an unknown type '" + name + "'");
}

} // namespace

json encodeChunk(const ChunkSpec & c)
{
    json inputs = json::object();
    for (auto & [name, input] : c.inputs) {
        json i = pinnedInput(input);
        if (input.spec.type == InputType::Git) i["ref"] = input.spec.git.ref;
        inputs[name] = i;
    }
    auto options = resultOptions(c.jobset.options);
    options["maxMemorySize"] = c.jobset.options.maxMemoryMiB; // not in the fingerprint, but the workers need it
    return json{{"v", protocolVersion},
                {"fingerprint", c.fingerprint},
                {"chunk", c.index},
                {"inputs", inputs},
                {"expression", {{"input", c.jobset.expression.input}, {"path", c.jobset.expression.path}}},
                {"options", options},
                {"restrictions",
                 {{"restrictEval", c.restrictions.restrictEval},
                  {"allowedUris", c.restrictions.allowedUris},
                  {"importFromDerivation", c.restrictions.importFromDerivation},
                  {"evaluatorEnv", c.restrictions.evaluatorEnv}}},
                {"paths", c.paths}};
}

ChunkSpec decodeChunk(const json & spec)
{
    try {
        if (spec.at("v").get<int>() != protocolVersion)
            throw std::runtime_error("a chunk of protocol version " + spec.at("v").dump() + " (this worker speaks " +
                                     std::to_string(protocolVersion) + ")");
        ChunkSpec c;
        c.fingerprint = spec.at("fingerprint").get<std::string>();
        c.index = spec.at("chunk").get<size_t>();
        for (auto & [name, i] : spec.at("inputs").items()) {
            ResolvedInput input;
            input.spec.type = typeNamed(i.at("type").get<std::string>());
            switch (input.spec.type) {
            case InputType::Git:
                input.spec.git.url = i.at("url").get<std::string>();
                input.spec.git.ref = i.at("ref").get<std::string>();
                input.spec.git.shallow = i.at("shallow").get<bool>();
                input.spec.git.submodules = i.at("submodules").get<bool>();
                input.git = FetchedGit{};
                input.git->rev = i.at("rev").get<std::string>();
                break;
            case InputType::Path:
                input.spec.path = i.at("path").get<std::string>();
                input.contentHash = i.at("contentHash").get<std::string>();
                break;
            default:
                input.spec.value = i.at("value");
            }
            c.jobset.inputs[name] = input.spec;
            c.inputs[name] = std::move(input);
        }
        c.jobset.expression.input = spec.at("expression").at("input").get<std::string>();
        c.jobset.expression.path = spec.at("expression").at("path").get<std::string>();
        auto & o = spec.at("options");
        auto & jo = c.jobset.options;
        jo.meta = o.at("meta").get<bool>();
        jo.constituents = o.at("constituents").get<bool>();
        jo.forceRecurse = o.at("forceRecurse").get<bool>();
        jo.checkCacheStatus = o.at("checkCacheStatus").get<bool>();
        jo.showTrace = o.at("showTrace").get<bool>();
        jo.evaluator = o.at("evaluator").get<std::string>();
        jo.maxMemoryMiB = o.at("maxMemorySize").get<size_t>();
        auto & r = spec.at("restrictions");
        c.restrictions.restrictEval = r.at("restrictEval").get<bool>();
        c.restrictions.allowedUris = r.at("allowedUris").get<std::vector<std::string>>();
        c.restrictions.importFromDerivation = r.at("importFromDerivation").get<bool>();
        c.restrictions.evaluatorEnv = r.at("evaluatorEnv").get<std::vector<std::string>>();
        for (auto & p : spec.at("paths")) {
            if (!p.is_array()) throw std::runtime_error("a chunk's attribute path is not a list");
            c.paths.push_back(p);
        }
        return c;
    } catch (json::exception & e) {
        throw std::runtime_error(std::string("a chunk message is not as protocol version 1 has it: ") + e.what());
    }
}

} // namespace evolive::fleet
