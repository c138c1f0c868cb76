#include "remote_plan.hh"

#include "fingerprint.hh"
#include "jobset.hh"

#include <filesystem>
#include <set>
#include <sstream>

namespace evolive::hydra {

namespace fs = std::filesystem;
using nlohmann::json;

std::optional<std::string> whyNotRemote(const JobsetRecord & jobset)
{
    if (jobset.flake) return "flake jobsets are evaluated here (an evolive server takes no flakes)";
    static const std::set<std::string> local{"build", "sysbuild", "eval"};
    for (auto & input : jobset.inputs)
        if (local.count(input.type))
            return "input `" + input.name + "' (" + input.type + ") is made of this machine's store paths";
    return std::nullopt;
}

RemotePlan planRemote(FetchContext & ctx)
{
    auto & jobset = ctx.jobset;
    RemotePlan plan;
    json inputs = json::object();
    std::map<std::string, ResolvedInput> resolved;
    for (auto & input : jobset.inputs) {
        if (input.values.empty()) continue;
        if (input.values.size() != 1) throw InputsError("multiple jobset input alternatives are no longer supported");
        auto & value = input.values[0];
        if (!value) throw FetchError("input `" + input.name + "' (" + input.type + ") has no value");
        FetchedInput in;
        in.type = input.type;
        json spec;
        if (input.type == "git") {
            auto g = resolveGitInput(ctx, input.name, *value);
            spec = {{"type", "git"}, {"url", g.source.url}, {"rev", g.rev}, {"shallow", false}};
            in.uri = g.uri;
            in.revision = g.rev;
            in.shortRev = g.rev.substr(0, 7);
        } else if (input.type == "path") {
            std::istringstream words(*value);
            std::string path;
            words >> path;
            if (path.empty() || path[0] != '/' || !fs::is_directory(path))
                throw FetchError("input `" + input.name + "': an evolive server takes path inputs that are directories "
                                 "(it must see the same one), not `" + path + "'");
            spec = {{"type", "path"}, {"path", path}};
            in.uri = path;
            in.revision = hashDirectory(path);
        } else {
            // Values: checked as for a local evaluation (unknown types fail there).
            in = fetchInput(ctx, input, value).at(0);
            if (input.type == "boolean") spec = {{"type", "boolean"}, {"value", *in.value == "true"}};
            else spec = {{"type", input.type}, {"value", *in.value}};
        }
        inputs[input.name] = spec;
        plan.inputs[input.name].push_back(in);
    }
    plan.jobset = {
        {"inputs", inputs},
        {"expression", {{"input", jobset.nixExprInput.value_or("")}, {"path", jobset.nixExprPath.value_or("")}}},
        {"options",
         {{"workers", ctx.settings.workers},
          {"maxMemorySize", ctx.settings.maxMemoryMiB},
          {"meta", true},
          {"constituents", true},
          {"forceRecurse", true},
          {"push", true}}},
    };

    // The hash: evolive's fingerprint of the request, from the revisions
    // and content hashes found here.
    Jobset parsed;
    try {
        parsed = parseJobset(plan.jobset);
    } catch (JobsetError & e) {
        throw FetchError(std::string("the jobset cannot be evaluated on an evolive server: ") + e.what());
    }
    for (auto & [name, spec] : parsed.inputs) {
        ResolvedInput r{spec};
        auto & in = plan.inputs.at(name).at(0);
        if (spec.type == InputType::Git) r.git = FetchedGit{*in.revision};
        if (spec.type == InputType::Path) {
            r.path = spec.path;
            r.contentHash = *in.revision;
        }
        resolved.emplace(name, std::move(r));
    }
    plan.hash = fingerprintOf(fingerprintDocument(parsed, resolved));
    return plan;
}

} // namespace evolive::hydra
