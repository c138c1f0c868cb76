#include "hydra_command.hh"

#include "eval_jobset.hh"

#include <iostream>
#include <memory>
#include <string>

namespace evolive {

bool startedAsHydraEvalJobset(const char * argv0)
{
    std::string name = argv0 ? argv0 : "";
    auto slash = name.rfind('/');
    if (slash != std::string::npos) name = name.substr(slash + 1);
    return name == "hydra-eval-jobset";
}

int runAsHydraEvalJobset(int argc, char ** argv)
{
    if (argc != 3) {
        std::cerr << "syntax: " << argv[0] << " <PROJECT> <JOBSET>\n";
        return 1;
    }
    return hydra::evalJobset(argv[1], argv[2]);
}

void addHydraCommand(CLI::App & app)
{
    struct Names
    {
        std::string project, jobset;
    };
    auto names = std::make_shared<Names>();
    auto * cmd = app.add_subcommand(
        "hydra-eval-jobset", "Evaluate a jobset of Hydra's database and write the evaluation back, as Hydra's own "
                             "hydra-eval-jobset (settings: HYDRA_DATABASE_URL, HYDRA_DATA, hydra.conf; docs/hydra.md)");
    cmd->add_option("project", names->project, "the project")->required();
    cmd->add_option("jobset", names->jobset, "the jobset")->required();
    cmd->callback([names]() { throw CLI::RuntimeError(hydra::evalJobset(names->project, names->jobset)); });
}

} // namespace evolive
