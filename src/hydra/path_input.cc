// Path inputs, as Hydra's PathInput plugin takes them: `PATH-OR-URL
// [SECONDS]`. The path is added to the store; a path has no revision of
// its own, so, as in Hydra, its revision is the time its current content
// was first seen (kept in cachedpathinputs), and a path checked less than
// SECONDS (path_input_cache_validity_seconds, 30) ago is not read again.
#include "input_fetch.hh"

#include "nix_store.hh"
#include "process.hh"

#include <ctime>
#include <iostream>
#include <sstream>

namespace evolive::hydra {

namespace {

std::string revisionOf(long timestamp, const std::string & sha256)
{
    time_t t = timestamp;
    struct tm tm;
    gmtime_r(&t, &tm);
    char buf[32];
    strftime(buf, sizeof buf, "%Y%m%d%H%M%S", &tm);
    return std::string(buf) + ":" + sha256;
}

std::string prefetchUrl(const std::string & url)
{
    ProcessSpec spec;
    spec.argv = {"nix-prefetch-url", "--", url};
    spec.env = {{"PRINT_PATH", "1"}};
    spec.timeout = std::chrono::seconds(3600);
    auto r = runProcess(spec);
    if (!r.ok()) throw FetchError("cannot fetch " + url + " to the Nix store: " + r.err);
    std::string last;
    std::istringstream lines(r.out);
    for (std::string l; std::getline(lines, l);)
        if (!l.empty()) last = l;
    return last;
}

} // namespace

FetchedInput fetchPathInput(FetchContext & ctx, const std::string & name, const std::string & value)
{
    std::istringstream words(value);
    std::string uri, freq;
    words >> uri >> freq;
    if (uri.empty()) throw FetchError("input `" + name + "' (path) has an empty value");
    long validity = ctx.settings.pathInputCacheValidity;
    if (!freq.empty()) {
        try {
            validity = std::stol(freq);
        } catch (std::exception &) {
            throw FetchError("input `" + name + "': `" + freq + "' is not a number of seconds");
        }
    }

    long now = time(nullptr);
    FetchedInput in;
    in.uri = uri;
    long timestamp = now;
    {
        pqxx::read_transaction tx(ctx.db);
        auto cached = tx.exec_params("select storepath, sha256hash, timestamp from cachedpathinputs "
                                     "where srcpath = $1 and lastseen > $2 order by lastseen desc limit 1",
                                     uri, now - validity);
        tx.commit();
        if (!cached.empty() && isValidPath(cached[0][0].as<std::string>())) {
            in.storePath = cached[0][0].as<std::string>();
            in.sha256hash = cached[0][1].as<std::string>();
            in.revision = revisionOf(cached[0][2].as<long>(), *in.sha256hash);
            return in;
        }
    }

    std::cerr << "copying input " << name << " from " << uri << "\n";
    try {
        in.storePath = uri[0] == '/' ? addToStore(uri) : prefetchUrl(uri);
        in.sha256hash = narHash(*in.storePath);
    } catch (StoreError & e) {
        throw FetchError(e.what());
    }

    pqxx::work tx(ctx.db);
    auto seen = tx.exec_params("select timestamp from cachedpathinputs where srcpath = $1 and sha256hash = $2", uri,
                               *in.sha256hash);
    if (seen.empty()) {
        tx.exec_params("insert into cachedpathinputs (srcpath, timestamp, lastseen, sha256hash, storepath) "
                       "values ($1, $2, $2, $3, $4) on conflict (srcpath, sha256hash) do update set lastseen = excluded.lastseen",
                       uri, now, *in.sha256hash, *in.storePath);
    } else {
        timestamp = seen[0][0].as<long>();
        tx.exec_params("update cachedpathinputs set lastseen = $1 where srcpath = $2 and sha256hash = $3", now, uri,
                       *in.sha256hash);
    }
    tx.commit();
    in.revision = revisionOf(timestamp, *in.sha256hash);
    return in;
}

} // namespace evolive::hydra
