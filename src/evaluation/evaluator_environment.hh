// What the evaluator process may see of the machine it runs on, from the
// restrictions its runner sets (jobset.hh, EvalRestrictions): Nix's
// settings for restricted evaluation, and a scrubbed environment. The list
// of variables let through is in docs/security.md.
#pragma once

#include "jobset.hh"

#include <map>
#include <string>
#include <vector>

namespace evolive {

// `--option NAME VALUE` for restrict-eval, allowed-uris,
// allow-import-from-derivation and nix-path (empty: the search path is the
// inputs' `-I` entries only, not the host's channels). nix-eval-jobs and
// lix-eval-jobs take the same options.
std::vector<std::string> restrictionArguments(const EvalRestrictions & restrictions);

// The evaluator's whole environment: HOME = `home` (a directory of its own),
// PATH, TMPDIR and Nix's store and daemon locations when set
// (NIX_REMOTE, NIX_DAEMON_SOCKET_PATH, NIX_STORE_DIR, NIX_STATE_DIR,
// NIX_LOG_DIR, NIX_CONF_DIR, NIX_USER_CONF_FILES, NIX_CONFIG,
// NIX_SSL_CERT_FILE, SSL_CERT_FILE), and the variables named in
// `evaluatorEnv`. Nothing else of this process's environment (tokens,
// credentials) reaches it; NIX_PATH never does.
std::map<std::string, std::string> evaluatorEnvironment(const EvalRestrictions & restrictions, const std::string & home);

// Throws JobsetError when a restriction cannot be passed on as given (a URI
// with whitespace, a variable name that is not one).
void checkRestrictions(const EvalRestrictions & restrictions);

} // namespace evolive
