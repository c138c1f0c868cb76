#include "evaluator_environment.hh"

#include <cstdlib>
#include <regex>

namespace evolive {

namespace {

// Where Nix finds its store, daemon and configuration, and the CA
// certificates fetchers need: the operator's, not secrets.
const char * const nixVariables[] = {"NIX_REMOTE",    "NIX_DAEMON_SOCKET_PATH", "NIX_STORE_DIR",
                                     "NIX_STATE_DIR", "NIX_LOG_DIR",            "NIX_CONF_DIR",
                                     "NIX_USER_CONF_FILES", "NIX_CONFIG",       "NIX_SSL_CERT_FILE",
                                     "SSL_CERT_FILE", "TMPDIR"};

} // namespace

std::vector<std::string> restrictionArguments(const EvalRestrictions & r)
{
    std::string uris;
    for (auto & uri : r.allowedUris) uris += (uris.empty() ? "" : " ") + uri;
    return {"--option", "restrict-eval", r.restrictEval ? "true" : "false",
            "--option", "allowed-uris", uris,
            "--option", "allow-import-from-derivation", r.importFromDerivation ? "true" : "false",
            "--option", "nix-path", ""};
}

std::map<std::string, std::string> evaluatorEnvironment(const EvalRestrictions & r, const std::string & home)
{
    std::map<std::string, std::string> env;
    const char * path = getenv("PATH");
    env["PATH"] = path ? path : "/usr/local/bin:/usr/bin:/bin";
    for (auto name : nixVariables)
        if (const char * value = getenv(name)) env[name] = value;
    for (auto & name : r.evaluatorEnv)
        if (const char * value = getenv(name.c_str())) env[name] = value;
    env["HOME"] = home;
    return env;
}

void checkRestrictions(const EvalRestrictions & r)
{
    for (auto & uri : r.allowedUris)
        if (uri.empty() || uri.find_first_of(" \t\r\n") != std::string::npos || uri.find('\0') != std::string::npos)
            throw JobsetError("allowed-uris: '" + uri + "' is not a URI prefix (empty, or with whitespace)");
    static const std::regex name("^[A-Za-z_][A-Za-z0-9_]*$");
    for (auto & variable : r.evaluatorEnv) {
        if (!std::regex_match(variable, name))
            throw JobsetError("evaluator-env: '" + variable + "' is not an environment variable name");
        if (variable == "NIX_PATH" || variable == "HOME")
            throw JobsetError("evaluator-env: " + variable + " cannot be let through (the search path is the "
                              "inputs; HOME is the evaluator's own)");
    }
}

} // namespace evolive
