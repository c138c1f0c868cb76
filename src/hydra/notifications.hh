// Hydra's PostgreSQL notifications, as hydra-notify and the queue runner
// read them (channels and tab-separated payloads of Hydra's manual,
// notifications.md):
//
//   eval_started           TRACE \t JOBSET           before anything is fetched
//   build_queued           BUILD                     a new build        } in the evaluation's
//   cached_build_finished  EVAL \t BUILD             a reused, finished } transaction, in job
//   cached_build_queued    EVAL \t BUILD             a reused, queued   } order
//   eval_added             TRACE \t JOBSET \t EVAL   then
//   builds_added           LOWEST-NEW-BUILD          then, when there are new builds: the
//                                                    queue runner's signal to look
//   eval_cached            TRACE \t JOBSET \t PREV   the inputs did not change
//   eval_failed            TRACE \t JOBSET           a fetch error or a failed evaluation
//
// A NOTIFY inside a transaction is delivered when it commits, in the order
// sent, and not at all when it rolls back.
#pragma once

#include <pqxx/pqxx>

#include <initializer_list>
#include <string>

namespace evolive::hydra {

// The opaque trace id of one run, as Hydra's script makes it: the
// monotonic clock in seconds (as Perl prints a number) and the process id.
std::string makeTraceId();

// Fields joined by tabs.
std::string payload(std::initializer_list<std::string> fields);

// Sends within `tx` (delivered when it commits).
void notify(pqxx::transaction_base & tx, const std::string & channel, const std::string & payload);

// Sends at once, in a transaction of its own.
void notifyNow(pqxx::connection & conn, const std::string & channel, const std::string & payload);

} // namespace evolive::hydra
