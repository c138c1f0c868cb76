// Store URLs as Nix writes them, and evolive's own forms, parsed once for
// every place that takes one (`evolive push --to`, `--cache`, `--results`,
// the configuration file):
//
//   /srv/cache, cache              a directory (evolive's form: no
//                                  parameters; a '?' is part of the name)
//   file:///srv/cache?PARAMS       a directory, taken as it is (as Nix 2.8
//                                  does: no percent-decoding of the path;
//                                  parameter names and values are decoded)
//   s3://BUCKET?PARAMS             an S3 bucket
//
// Each consumer takes the parameters it understands (take()); any left is
// refused by name (refuseRest()), before anything is written.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace evolive::cache {

class StoreUrl
{
public:
    enum class Kind { Directory, S3 };

    // Throws std::invalid_argument for another scheme, a missing bucket, a
    // parameter given twice, or malformed percent-encoding.
    static StoreUrl parse(const std::string & url);

    Kind kind() const { return kind_; }
    // The directory, or the bucket's name.
    const std::string & location() const { return location_; }
    // As given, for messages.
    const std::string & text() const { return text_; }

    // The value of `name` (or of one of its `aliases`), taken out of the
    // URL; nullopt when absent. The typed forms throw std::invalid_argument
    // naming the parameter when the value is not of the type.
    std::optional<std::string> take(const std::string & name, const std::vector<std::string> & aliases = {});
    std::optional<bool> takeBool(const std::string & name);           // true, false, 1, 0
    std::optional<int64_t> takeInteger(const std::string & name);
    std::optional<uint64_t> takeCount(const std::string & name, const std::vector<std::string> & aliases = {});

    // Throws std::invalid_argument naming the first parameter no take()
    // asked for, and listing those that were: `what` names the consumer
    // ("a binary cache", "a results store").
    void refuseRest(const std::string & what) const;

    // Throws std::invalid_argument: `name` is a parameter Nix knows that
    // evolive does not do with this value (`why` says what it does do).
    [[noreturn]] void refuse(const std::string & name, const std::string & value, const std::string & why) const;

private:
    Kind kind_ = Kind::Directory;
    std::string location_, text_;
    std::map<std::string, std::string> params_;
    std::vector<std::string> asked_;
};

} // namespace evolive::cache
