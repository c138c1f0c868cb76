// The evaluation on an `evolive serve` (evolive_server, with evolive_token):
// the jobset of remote_plan.hh is POSTed to /v1/evaluations and the stream
// read as it comes. Each job arrives once its .drv closure is in the
// server's binary cache; the closures are copied from that cache
// (evolive_cache, as this machine reads it) into the local store while
// the stream goes on, and all of them are there before run() returns. The
// same fingerprint asked by several Hydras is evaluated once by the server
// (the others join it or get its stored result).
#pragma once

#include "evaluation_source.hh"
#include "settings.hh"

#include <nlohmann/json.hpp>

#include <string>

namespace evolive::hydra {

class RemoteEvaluator : public JobSource
{
public:
    RemoteEvaluator(const HydraSettings & settings, nlohmann::json jobset);
    void run(const JobHandler & onJob) override;

private:
    const HydraSettings & settings_;
    nlohmann::json jobset_;
};

} // namespace evolive::hydra
