// Jobs as rows of a result file and back (the columns are in
// docs/results.md). A row read back is checked, not trusted: a result file
// may come from a shared bucket, so each cell must be what evolive writes
// there, and a replayed line is encoded anew, never copied from the file.
#pragma once

#include "parquet_writer.hh"

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

namespace evolive {

// attr, attrPath, name, system, drvPath, outputs, meta, error,
// constituents, extra: one row per job; nested values as JSON text; `extra`
// holds every other field of the line, so a replay is lossless.
extern const std::vector<std::string> resultColumns;

// The row of a job line (without its `type`).
std::vector<results::Cell> resultRow(const nlohmann::json & job);

// The `job` message a row of a stored result holds (without `type`).
// Throws std::runtime_error, saying which column, for a cell that is not
// what resultRow writes: JSON that does not parse (or is nested too
// deeply), a value of the wrong shape, `extra` naming a column or `type`.
nlohmann::json jobFromRow(const std::vector<std::string> & columns, const std::vector<results::Cell> & row);

// The same as one JSON line with `"type": "job"`: what a replay streams.
std::string jobLineFromRow(const std::vector<std::string> & columns, const std::vector<results::Cell> & row);

// A result's metadata entry `key` as JSON (`inputs`, `expression` are JSON
// text): parsed (depth-bounded), the text itself when it is not JSON, null
// when there is none.
nlohmann::json metadataValue(const std::map<std::string, std::string> & metadata, const std::string & key);

} // namespace evolive
