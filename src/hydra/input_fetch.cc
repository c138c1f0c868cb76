#include "input_fetch.hh"

#include "nix_store.hh"

#include <iostream>
#include <set>

namespace evolive::hydra {

bool ensurePath(const HydraSettings & settings, const std::string & path)
{
    if (isValidPath(path)) return true;
    if (settings.evalSubstituter) {
        try {
            copyFrom(*settings.evalSubstituter, {path}, false);
        } catch (StoreError & e) {
            std::cerr << e.what() << "\n";
        }
    }
    return isValidPath(path);
}

std::vector<FetchedInput> fetchInput(FetchContext & ctx, const JobsetInputRecord & input,
                                     const std::optional<std::string> & value)
{
    const auto & name = input.name;
    const auto & type = input.type;
    std::cerr << "(" << ctx.jobset.project << ":" << ctx.jobset.name << ") Fetching input `" << name << "` (" << type
              << ") " << value.value_or("") << "\n";

    auto needValue = [&]() -> const std::string & {
        if (!value) throw FetchError("input `" + name + "' (" + type + ") has no value");
        return *value;
    };

    std::vector<FetchedInput> inputs;
    if (type == "string" || type == "nix") {
        FetchedInput in;
        in.value = needValue();
        inputs.push_back(in);
    } else if (type == "boolean") {
        auto & v = needValue();
        if (v != "true" && v != "false")
            throw FetchError("input `" + name + "' is a boolean, but its value `" + v + "' is neither `true' nor `false'");
        FetchedInput in;
        in.value = v;
        inputs.push_back(in);
    } else if (type == "git") {
        inputs.push_back(fetchGitInput(ctx, name, needValue()));
    } else if (type == "path") {
        inputs.push_back(fetchPathInput(ctx, name, needValue()));
    } else if (type == "build") {
        inputs = fetchBuildInput(ctx, name, needValue());
    } else if (type == "sysbuild") {
        inputs = fetchSysbuildInput(ctx, name, needValue());
    } else if (type == "eval") {
        inputs.push_back(fetchEvalInput(ctx, name, needValue()));
    } else {
        // Types of Hydra's other input plugins.
        static const std::set<std::string> others{"hg", "svn", "svn-checkout", "bzr", "bzr-checkout", "darcs", "cvs",
                                                  "github_pulls", "gitea_pulls", "gitlab_pulls", "bitbucketpulls",
                                                  "githubpulls", "gitea_refs", "github_refs"};
        if (others.count(type))
            throw FetchError("input `" + name + "' has type `" + type +
                             "', which evolive's hydra-eval-jobset does not support "
                             "(it supports git, path, string, boolean, nix, build, sysbuild and eval)");
        throw FetchError("input `" + name + "' has unknown type `" + type + "'.");
    }
    for (auto & in : inputs) in.type = type;
    return inputs;
}

} // namespace evolive::hydra
