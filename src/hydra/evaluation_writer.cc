#include "evaluation_writer.hh"

#include "database.hh"
#include "notifications.hh"

#include <ctime>
#include <functional>
#include <iostream>

namespace evolive::hydra {

namespace {

using Clock = std::chrono::steady_clock;

std::optional<int> optionalInt(const pqxx::field & f)
{
    if (f.is_null()) return std::nullopt;
    return f.as<int>();
}

// One attempt; the staged rows' build_id/isnew/prev_* are set within it, so
// a rolled-back attempt leaves them as they were.
WrittenEvaluation attempt(pqxx::connection & conn, const EvaluationToWrite & e)
{
    auto & jobset = *e.jobset;
    auto started = Clock::now();
    long now = time(nullptr);
    pqxx::work tx(conn);

    auto prev = tx.exec_params("select id from jobsetevals where jobset_id = $1 and hasnewbuilds = 1 "
                               "order by id desc limit 1",
                               jobset.id);
    std::optional<int> prevEval;
    if (!prev.empty()) prevEval = prev[0][0].as<int>();

    int errorId = tx.exec_params1("insert into evaluationerrors (errormsg, errortime) values ($1, $2) returning id",
                                  e.errorMsg, e.errorTime)[0]
                      .as<int>();
    int evalId = tx.exec_params1("insert into jobsetevals (jobset_id, evaluationerror_id, timestamp, checkouttime, "
                                 "evaltime, hasnewbuilds, nrbuilds, flake, nixexprinput, nixexprpath, hash) "
                                 "values ($1, $2, $3, $4, 0, 0, 0, $5, $6, $7, $8) returning id",
                                 jobset.id, errorId, now, e.checkoutSeconds, e.flake, jobset.nixExprInput,
                                 jobset.nixExprPath, e.hash)[0]
                     .as<int>();

    // Reuse: a build of the previous evaluation for the same job whose
    // first output has the same path (or, without output paths, the same .drv).
    if (prevEval)
        tx.exec_params("update evolive_jobs s set build_id = p.id, isnew = 0, prev_finished = p.finished, "
                       "prev_drvpath = p.drvpath "
                       "from (select b.id, b.job, b.finished, b.drvpath, o.name, o.path from jobsetevalmembers m "
                       "      join builds b on b.id = m.build join buildoutputs o on o.build = b.id "
                       "      where m.eval = $1 and b.jobset_id = $2) p "
                       "where p.job = s.job and p.name = s.first_output_name and "
                       "case when s.first_output_path is null then p.drvpath = s.drvpath "
                       "else p.path = s.first_output_path end",
                       *prevEval, jobset.id);

    // The new builds, in the order the evaluator gave the jobs.
    tx.exec_params("with added as (insert into builds (finished, timestamp, jobset_id, job, nixname, description, "
                   "drvpath, system, license, homepage, maintainers, maxsilent, timeout, ischannel, iscurrent, priority) "
                   "select 0, $1, $2, job, nixname, description, drvpath, system, license, homepage, maintainers, "
                   "maxsilent, timeout, ischannel, 1, priority from evolive_jobs where build_id is null order by ordinal "
                   "returning id, job) "
                   "update evolive_jobs s set build_id = added.id, isnew = 1 from added where s.job = added.job",
                   now, jobset.id);
    tx.exec("insert into buildoutputs (build, name, path) select s.build_id, o.key, o.value "
            "from evolive_jobs s cross join lateral jsonb_each_text(s.outputs) o where s.isnew = 1");

    auto counts = tx.exec1("select count(*) filter (where isnew = 1), count(*), min(build_id) filter (where isnew = 1) "
                           "from evolive_jobs");
    WrittenEvaluation w;
    w.evalId = evalId;
    w.newBuilds = counts[0].as<size_t>();
    w.builds = counts[1].as<size_t>();
    auto lowestNew = optionalInt(counts[2]);
    size_t prevMembers = 0;
    if (prevEval)
        prevMembers = tx.exec_params1("select count(*) from jobsetevalmembers where eval = $1", *prevEval)[0].as<size_t>();
    w.changed = w.newBuilds > 0 || (prevEval && prevMembers != w.builds);

    tx.exec_params("update jobsetevals set hasnewbuilds = $1, nrbuilds = $2 where id = $3", w.changed ? 1 : 0,
                   w.changed ? std::optional<size_t>(w.builds) : std::nullopt, evalId);

    // One notification per job, in job order (volatile functions in the
    // select list are evaluated after the sort).
    tx.exec_params("select pg_notify(case when isnew = 1 then 'build_queued' "
                   "  when prev_finished = 1 and prev_drvpath = drvpath then 'cached_build_finished' "
                   "  else 'cached_build_queued' end, "
                   "case when isnew = 1 then build_id::text else $1 || E'\\t' || build_id end) "
                   "from evolive_jobs order by ordinal",
                   std::to_string(evalId));
    notify(tx, "eval_added", payload({e.traceId, std::to_string(jobset.id), std::to_string(evalId)}));

    if (w.changed) {
        tx.exec_params("insert into jobsetevalmembers (eval, build, isnew) select $1, build_id, isnew from evolive_jobs",
                       evalId);

        if (e.failedAggregate) throw EvaluationFailure(*e.failedAggregate);
        // An aggregate's constituents are builds by .drv; of several jobs
        // with the same .drv (aliases), the one with the shortest name,
        // then the first in byte order, as Hydra picks it.
        tx.exec("with by_drv as (select distinct on (drvpath) drvpath, build_id from evolive_jobs "
                "  order by drvpath, length(job), job collate \"C\") "
                "insert into aggregateconstituents (aggregate, constituent) "
                "select distinct a.build_id, c.build_id from evolive_jobs s join by_drv a on a.drvpath = s.drvpath "
                "cross join lateral jsonb_array_elements_text(s.constituents) k(drv) join by_drv c on c.drvpath = k.drv "
                "where s.constituents is not null on conflict do nothing");
        for (auto r : tx.exec("select s.job, k.drv from evolive_jobs s "
                              "cross join lateral jsonb_array_elements_text(s.constituents) k(drv) "
                              "where s.constituents is not null and not exists "
                              "(select 1 from evolive_jobs t where t.drvpath = k.drv) order by s.ordinal"))
            std::cerr << "aggregate job ‘" << r[0].as<std::string>() << "’ has a constituent ‘" << r[1].as<std::string>()
                      << "’ that doesn't correspond to a Hydra build\n";

        for (auto & [name, alts] : *e.inputs)
            for (size_t n = 0; n < alts.size(); ++n) {
                auto & in = alts[n];
                std::optional<size_t> shortRevLength;
                if (in.shortRev) shortRevLength = in.shortRev->size();
                tx.exec_params("insert into jobsetevalinputs (eval, name, altnr, type, uri, revision, shortrevlength, "
                               "value, dependency, path, sha256hash) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                               evalId, name, n, in.type, in.uri, in.revision, shortRevLength, in.value, in.id,
                               in.storePath.value_or(""), in.sha256hash);
            }

        // Wakes the queue runner.
        if (lowestNew) notify(tx, "builds_added", std::to_string(*lowestNew));
        w.currentEval = evalId;
    } else {
        w.currentEval = prevEval;
    }

    tx.exec_params("update jobsets set enabled = case when enabled = 2 then 0 else enabled end, lastcheckedtime = $1, "
                   "forceeval = null, errormsg = $2, errortime = $3, fetcherrormsg = null where id = $4",
                   (long) time(nullptr), e.errorMsg, e.errorTime, jobset.id);
    long evalSeconds = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - e.evalStart).count();
    tx.exec_params("update jobsetevals set evaltime = $1 where id = $2", evalSeconds, evalId);
    tx.commit();
    w.transactionSeconds = std::chrono::duration<double>(Clock::now() - started).count();
    return w;
}

// Runs `batch` (an update of at most a batch of rows, in a transaction of
// its own) until it updates none.
void inBatches(pqxx::connection & conn, const std::string & what,
               const std::function<pqxx::result(pqxx::work &)> & batch)
{
    for (;;) {
        size_t n = 0;
        withRetries(what, [&] {
            pqxx::work tx(conn);
            n = batch(tx).affected_rows();
            tx.commit();
        });
        if (n == 0) return;
    }
}

} // namespace

WrittenEvaluation writeEvaluation(pqxx::connection & conn, const EvaluationToWrite & eval)
{
    WrittenEvaluation written;
    int attempts = 0;
    withRetries("evaluation transaction", [&] {
        ++attempts;
        written = attempt(conn, eval);
    });
    written.attempts = attempts;
    return written;
}

void updateBuildsAfterEvaluation(pqxx::connection & conn, int jobsetId, const WrittenEvaluation & written)
{
    // Reused builds whose .drv changed: repointed and queued again, in id order.
    std::vector<std::pair<int, std::string>> repoints;
    {
        pqxx::read_transaction tx(conn);
        for (auto r : tx.exec("select build_id, drvpath from evolive_jobs where isnew = 0 "
                              "and prev_drvpath is distinct from drvpath order by build_id"))
            repoints.emplace_back(r[0].as<int>(), r[1].as<std::string>());
    }
    if (!repoints.empty())
        withRetries("repointing builds", [&] {
            pqxx::work tx(conn);
            for (auto & [id, drv] : repoints)
                tx.exec_params("update builds set drvpath = $1, finished = 0, buildstatus = null where id = $2", drv, id);
            tx.commit();
        });

    if (!written.currentEval) return;
    {
        // The staged rows now have their build ids: an index and fresh
        // statistics, so that the anti-join below is a hash or index join.
        pqxx::nontransaction tx(conn);
        tx.exec("create index on evolive_jobs (build_id)");
        tx.exec("analyze evolive_jobs (build_id)");
    }
    // The current evaluation's builds are the staged ones: its members when
    // it has new builds, and otherwise the previous evaluation's members,
    // every one of which was reused. Working from the staged ids keeps these
    // updates quick whatever PostgreSQL's statistics of Hydra's tables say.
    inBatches(conn, "updating current builds", [&](pqxx::work & tx) {
        return tx.exec("update builds set iscurrent = 1 where id in (select b.id from builds b "
                       "join evolive_jobs s on s.build_id = b.id where b.iscurrent = 0 order by b.id limit 10000)");
    });
    inBatches(conn, "updating current builds", [&](pqxx::work & tx) {
        return tx.exec_params("update builds set iscurrent = 0 where id in (select b.id from builds b "
                              "where b.jobset_id = $1 and b.iscurrent = 1 and not exists (select 1 from "
                              "evolive_jobs s where s.build_id = b.id) order by b.id limit 10000)",
                              jobsetId);
    });
}

} // namespace evolive::hydra
