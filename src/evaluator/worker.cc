#include "worker.hh"

#include "channel.hh"
#include "drv_batch_store.hh"
#include "fd_io.hh"
#include "job_info.hh"
#include "nix_api.hh"

#include <nix/eval-inline.hh>
#include <nix/globals.hh>
#include <nix/logging.hh>

#include <algorithm>
#include <chrono>
#include <set>
#include <csignal>
#include <cstring>
#include <fstream>
#include <sys/resource.h>
#include <unistd.h>

namespace evolive {

using nlohmann::json;

namespace {

void send(const json & message)
{
    writeAll(workerReplyFd, message.dump() + "\n", "writing to pipe");
}

// A stack overflow or other fatal signal must still reach the coordinator as
// a message, so that the job gets an error line with a reason. Only
// async-signal-safe calls here.
void fatalSignalHandler(int signo, siginfo_t * info, void * ctx)
{
    bool overflow = false;
#if defined(__x86_64__) && defined(REG_RSP)
    if (signo == SIGSEGV) {
        char * sp = (char *) ((ucontext_t *) ctx)->uc_mcontext.gregs[REG_RSP];
        ptrdiff_t diff = (char *) info->si_addr - sp;
        overflow = diff > -65536 && diff < 65536;
    }
#endif
    const char * message = overflow ? "{\"fatal\":\"stack overflow (possible infinite recursion)\"}\n"
                           : signo == SIGSEGV ? "{\"fatal\":\"the worker crashed (segmentation fault)\"}\n"
                                              : "{\"fatal\":\"the worker crashed (fatal signal)\"}\n";
    [[maybe_unused]] auto n = ::write(workerReplyFd, message, strlen(message));
    _exit(1);
}

void installFatalSignalHandlers()
{
    // initNix() already gave us an alternate signal stack for SIGSEGV.
    struct sigaction act;
    memset(&act, 0, sizeof act);
    sigfillset(&act.sa_mask);
    act.sa_sigaction = fatalSignalHandler;
    act.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigaction(SIGSEGV, &act, nullptr);
    sigaction(SIGBUS, &act, nullptr);
}

size_t residentMiB()
{
    std::ifstream statm("/proc/self/statm");
    size_t size = 0, resident = 0;
    statm >> size >> resident;
    return resident * sysconf(_SC_PAGESIZE) / (1024 * 1024);
}

void limitAddressSpace(size_t mib)
{
    struct rlimit limit;
    getrlimit(RLIMIT_AS, &limit);
    limit.rlim_cur = (rlim_t) mib * 1024 * 1024;
    if (limit.rlim_max != RLIM_INFINITY && limit.rlim_cur > limit.rlim_max) limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_AS, &limit);
}

// The function autoCallFunction calls for `fun`: `fun` itself, or, for a
// set with `__functor`, what the functor makes of it (as autoCallFunction
// does, so calling autoCallFunction on the result gives the same value).
nix::Value * autoCallee(nix::EvalState & state, nix::Value * fun)
{
    state.forceValue(*fun, nix::noPos);
    while (fun->type() == nix::nAttrs) {
        auto functor = nix_api::getAttr(state, *fun, "__functor");
        if (!functor) break;
        nix::Value * v = state.allocValue();
        state.callFunction(*functor, *fun, *v, nix::noPos);
        state.forceValue(*v, nix::noPos);
        fun = v;
    }
    return fun;
}

std::string quotedList(const std::vector<std::string> & names)
{
    std::string out;
    for (auto & name : names) out += (out.empty() ? "'" : ", '") + name + "'";
    return out;
}

// --reject-unused-args: when `fun` is a function with an argument set that
// has no `...`, every --arg/--argstr name must be one of its arguments;
// Nix's auto-calling would silently drop the others. A function with `...`
// may read any argument through `args@{ ... }`, and a plain lambda or a
// non-function is not called with them at all, so their inputs can only be
// used some other way (`<name>` search paths): no check for those. Nor for
// an argument that is also a search path entry (`-I name=...`, as evolive
// gives git and path inputs): the expression may use it as `<name>`.
void rejectUnusedArgs(nix::EvalState & state, const nix::Value & fun, const std::vector<std::string> & argNames,
                      const std::string & what)
{
    auto formals = nix_api::formalsOf(state, fun);
    if (!formals || formals->ellipsis) return;

    auto searchNames = nix_api::searchPathNames(state);
    std::vector<std::string> unused;
    for (auto & name : argNames)
        if (!std::binary_search(formals->names.begin(), formals->names.end(), name) && !searchNames.count(name))
            unused.push_back(name);
    if (unused.empty()) return;
    std::sort(unused.begin(), unused.end());

    std::string takes;
    for (auto & name : formals->names) takes += (takes.empty() ? "" : ", ") + name;
    bool one = unused.size() == 1;
    throw nix::Error("%s %s %s given but %s does not take %s (%s); remove the %s or add %s to the function's arguments",
                     one ? "argument" : "arguments", quotedList(unused), one ? "is" : "are", what,
                     one ? "it" : "them", takes.empty() ? "it takes no arguments" : "it takes: " + takes,
                     one ? "input" : "inputs", one ? "it" : "them");
}

// The value whose attributes are the jobs: the file or expression, called
// with the --arg/--argstr arguments when it is a function, then --select.
// Every worker evaluates it; only the first failure reaches the output (the
// coordinator prints the `fatal` of the first worker that dies unready).
nix::Value * evaluateRoot(nix::EvalState & state, EvalJobsArgs & args)
{
    nix::Value * root = state.allocValue();
    if (!args.flake.empty()) {
        root = nix_api::evaluateFlake(state, args);
    } else {
        nix::Value * top = nix_api::evalReleaseExpr(state, args);
        auto autoArgs = args.getAutoArgs(state);
        if (args.rejectUnusedArgs) {
            top = autoCallee(state, top);
            nix::Value argSet;
            argSet.mkAttrs(autoArgs);
            rejectUnusedArgs(state, *top, nix_api::attrNames(state, argSet),
                             args.fromArgs ? "the --expr expression" : args.releaseExpr);
        }
        state.autoCallFunction(*autoArgs, *top, *root);
    }
    if (!args.selectExpr.empty()) {
        nix::Value * select = nix_api::evalExprString(state, args.selectExpr);
        nix::Value * selected = state.allocValue();
        state.callFunction(*select, *root, *selected, nix::noPos);
        root = selected;
    }
    state.forceValue(*root, nix::noPos);
    if (root->type() != nix::nAttrs)
        throw nix::Error("the jobset must evaluate to an attribute set (or a function returning one), "
                             "but it is %s", nix::showType(*root));
    return root;
}

// `entered`: a set here is recursed into whatever its
// recurseForDerivations (the root, and a path asked for with --paths).
json evaluateAttr(nix::EvalState & state, EvalJobsArgs & args, nix::Value * root, const AttrPath & path,
                  nix::Value * apply, bool entered)
{
    nix::Value * v = root;
    for (auto & name : path) {
        state.forceValue(*v, nix::noPos);
        auto attr = v->type() == nix::nAttrs ? nix_api::getAttr(state, *v, name) : nullptr;
        if (!attr) throw nix::Error("attribute '%s' missing", name);
        v = attr;
    }
    state.forceValue(*v, nix::noPos);

    if (v->type() != nix::nAttrs) return {{"skip", true}};
    if (state.isDerivation(*v) && args.listPaths) return {{"job", describeListedPath(state, args, path, *v)}};
    if (state.isDerivation(*v)) return {{"job", describeDerivation(state, args, path, *v, apply)}};

    bool recurse = args.forceRecurse || entered;
    if (!recurse) recurse = nix_api::boolAttr(state, *v, "recurseForDerivations", false);
    if (!recurse) return {{"skip", true}};
    return {{"children", nix_api::attrNames(state, *v)}};
}

bool needsDrvsOnDisk(const EvalJobsArgs & args)
{
    return !args.gcRootsDir.empty() || args.showInputDrvs || args.checkCacheStatus;
}

} // namespace

int runWorker(EvalJobsArgs & args)
{
    installFatalSignalHandlers();
    // A listing writes nothing to the store either (not even the files
    // that evaluating `toFile` or a path interpolation would add).
    if (args.noInstantiate || args.listPaths) nix::settings.readOnlyMode = true;

    auto store = DrvBatchStore::open();
    auto batching = store.dynamic_pointer_cast<DrvBatchStore>();
    auto state = nix_api::makeEvalState(args, store);

    nix::Value * root = nullptr;
    nix::Value * apply = nullptr;
    try {
        root = evaluateRoot(*state, args);
        if (!args.applyExpr.empty()) {
            apply = nix_api::evalExprString(*state, args.applyExpr);
        }
    } catch (nix::Error & e) {
        send({{"fatal", nix_api::renderError(e)}});
        return 1;
    }
    // After the root, so that a limit that is too small shows up per job.
    limitAddressSpace(args.effectiveHardLimitMiB());
    send({{"ready", true}});

    LineReader requests(workerRequestFd);
    while (auto line = requests.readLine()) {
        auto request = json::parse(*line);
        if (batching && request.contains("written")) batching->confirmWritten(request["written"].get<uint64_t>());
        json results = json::array();
        bool restart = false;
        auto & paths = request.at("paths");
        std::set<size_t> entered;
        if (request.contains("entered")) entered = request["entered"].get<std::set<size_t>>();
        auto batchStarted = std::chrono::steady_clock::now();
        for (size_t i = 0; i < paths.size(); ++i) {
            // Slow jobs: report what is done every so often (the coordinator
            // hands the rest out again), so that jobs stream as they are found.
            if (i && std::chrono::steady_clock::now() - batchStarted > std::chrono::milliseconds(250)) break;
            auto path = paths[i].get<AttrPath>();
            // Tells the coordinator which job to blame if this one kills us.
            if (i) send({{"at", i}});
            try {
                results.push_back(evaluateAttr(*state, args, root, path, apply, path.empty() || entered.count(i)));
            } catch (nix::Error & e) {
                auto message = nix_api::renderError(e);
                nix::logger->log(nix::lvlError, nix::fmt("evaluating '%s': %s", showAttrPath(path), message));
                results.push_back({{"job", errorJob(path, message)}});
            } catch (std::bad_alloc &) {
                // The evaluator's state is not to be trusted after this: report
                // the job and hand the rest of the batch to a fresh worker.
                auto message = nix::fmt("error: out of memory (the worker's limit is %d MiB, see --max-memory-hard)",
                                        args.effectiveHardLimitMiB());
                results.push_back({{"job", environmentErrorJob(path, message)}});
                restart = true;
                break;
            }
        }

        // The batch's new .drv files go to the coordinator, unless a job
        // field needs them on disk here and now.
        json drvs = json::array();
        try {
            if (batching && needsDrvsOnDisk(args)) batching->flush();
            else if (batching) drvs = batching->handOff();
        } catch (nix::Error & e) {
            // Without their .drv files the batch's jobs are not jobs.
            for (auto & result : results)
                if (result.contains("job") && !result["job"].contains("error"))
                    result["job"] = environmentErrorJob(result["job"]["attrPath"].get<AttrPath>(), nix_api::renderError(e));
        }
        for (auto & result : results) {
            if (!result.contains("job") || result["job"].contains("error")) continue;
            try {
                addStoreFields(*store, args, result["job"]);
            } catch (nix::Error & e) {
                auto & job = result["job"];
                job = environmentErrorJob(job["attrPath"].get<AttrPath>(), nix_api::renderError(e));
            }
        }

        if (residentMiB() > args.maxMemoryMiB) restart = true;
        json reply{{"results", results}, {"restart", restart}};
        if (!drvs.empty()) {
            reply["drvs"] = std::move(drvs);
            reply["handOff"] = batching->handOffCount();
        }
        send(reply);
        if (restart) break;
    }
    return 0;
}

} // namespace evolive
