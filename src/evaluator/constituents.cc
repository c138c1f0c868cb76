#include "constituents.hh"

#include "nix_api.hh"

#include <nix/util.hh>

#include <algorithm>
#include <fnmatch.h>
#include <iostream>
#include <set>

namespace evolive {

using nlohmann::json;

namespace {

class AggregateResolver
{
public:
    AggregateResolver(const EvalJobsArgs & args, const std::map<std::string, json> & jobs,
                      std::vector<json> aggregates)
        : args_(args), jobs_(jobs)
    {
        for (auto & a : aggregates) {
            auto name = a["attr"].get<std::string>();
            order_.push_back(name);
            pending_.emplace(name, std::move(a));
        }
    }

    std::vector<json> resolveAll()
    {
        // By name, as nix-eval-jobs walks them, so that a cycle is reported
        // between the same two jobs as there.
        std::vector<std::string> byName(order_);
        std::sort(byName.begin(), byName.end());
        try {
            for (auto & name : byName) resolve(name);
        } catch (DependencyCycle & cycle) {
            // nix-eval-jobs' texts and choice: the two jobs closing the cycle
            // get it as their error, every other aggregate is skipped.
            std::cerr << "Found dependency cycle between jobs '" << cycle.a << "' and '" << cycle.b << "'\n";
            for (auto & name : order_) {
                json job = pending_.at(name);
                job["error"] = name == cycle.a || name == cycle.b
                                   ? "Dependency cycle: " + cycle.a + " <-> " + cycle.b
                                   : std::string("Skipping aggregate because of a dependency cycle");
                done_[name] = std::move(job);
            }
        }
        std::vector<json> out;
        for (auto & name : order_) out.push_back(done_.at(name));
        return out;
    }

private:
    struct DependencyCycle
    {
        std::string a, b; // `b` names `a`, which is being resolved
    };

    // The line of the job called `name`, resolving it first if it is an
    // aggregate; `from` is the aggregate that names it.
    const json * lookup(const std::string & name, const std::string & from)
    {
        if (pending_.count(name)) {
            if (inProgress_.count(name)) throw DependencyCycle{name, from};
            resolve(name);
        }
        if (auto i = done_.find(name); i != done_.end()) return &i->second;
        if (auto i = jobs_.find(name); i != jobs_.end()) return &i->second;
        return nullptr;
    }

    void addConstituent(const std::string & name, const json * job, std::set<std::string> & drvs,
                        std::set<std::string> & errors)
    {
        if (!job) return;
        if (job->contains("error"))
            errors.insert(name + ": " + (*job)["error"].get<std::string>());
        else if (job->contains("drvPath"))
            drvs.insert((*job)["drvPath"].get<std::string>());
    }

    const json & resolve(const std::string & name)
    {
        if (auto i = done_.find(name); i != done_.end()) return i->second;
        inProgress_.insert(name);
        json job = pending_.at(name);

        std::set<std::string> drvs, errors;
        for (auto & d : job.value("constituents", json::array())) drvs.insert(d.get<std::string>());
        bool glob = job.value("globConstituents", false);

        for (auto & n : job["namedConstituents"]) {
            auto wanted = n.get<std::string>();
            if (!glob) {
                const json * found = lookup(wanted, name);
                if (!found) errors.insert(wanted + ": does not exist");
                addConstituent(wanted, found, drvs, errors);
                continue;
            }
            bool matched = false;
            for (auto & candidate : allNames()) {
                if (candidate == name || fnmatch(wanted.c_str(), candidate.c_str(), 0) != 0) continue;
                matched = true;
                addConstituent(candidate, lookup(candidate, name), drvs, errors);
            }
            if (!matched) errors.insert(wanted + ": constituent glob pattern had no matches");
        }

        job["constituents"] = drvs;
        if (!errors.empty()) {
            std::string message;
            for (auto & e : errors) message += e + "\n";
            job["error"] = message;
        } else if (!args_.noInstantiate) {
            rewrite(job, drvs);
        }
        inProgress_.erase(name);
        return done_[name] = std::move(job);
    }

    std::set<std::string> allNames() const
    {
        std::set<std::string> names;
        for (auto & [n, _] : jobs_) names.insert(n);
        for (auto & [n, _] : pending_) names.insert(n);
        return names;
    }

    // Adds each constituent as an input of the aggregate's derivation, as
    // Hydra does, so that building the aggregate builds its constituents.
    void rewrite(json & job, const std::set<std::string> & constituents)
    {
        if (!store_) store_ = nix::openStore();
        auto rewritten = nix_api::addConstituentInputs(*store_, job["drvPath"].get<std::string>(), constituents);
        if (!rewritten) return;
        if (!args_.gcRootsDir.empty()) {
            auto root = args_.gcRootsDir + "/" + std::string(nix::baseNameOf(rewritten->drvPath));
            if (!nix::pathExists(root)) nix_api::addPermRoot(*store_, rewritten->drvPath, root);
        }
        job["drvPath"] = rewritten->drvPath;
        job["outputs"]["out"] = rewritten->outPath;
    }

    const EvalJobsArgs & args_;
    const std::map<std::string, json> & jobs_;
    std::vector<std::string> order_;
    std::map<std::string, json> pending_;
    std::map<std::string, json> done_;
    std::set<std::string> inProgress_;
    std::shared_ptr<nix::Store> store_;
};

} // namespace

std::vector<json> resolveAggregates(const EvalJobsArgs & args, const std::map<std::string, json> & jobs,
                                    std::vector<json> aggregates)
{
    return AggregateResolver(args, jobs, std::move(aggregates)).resolveAll();
}

} // namespace evolive
