#include "binary_cache.hh"
#include "s3_cache.hh"

namespace evolive::cache {

std::unique_ptr<BinaryCache> openBinaryCache(const std::string & where)
{
    if (where.rfind("s3://", 0) == 0) {
        auto location = S3Location::parse(where);
        return std::make_unique<S3Cache>(location, S3Credentials::find(location.profile));
    }
    if (where.rfind("file://", 0) == 0) return std::make_unique<DirectoryCache>(where.substr(7));
    if (where.find("://") != std::string::npos)
        throw std::invalid_argument("unsupported binary cache '" + where + "' (a directory, file:// or s3://)");
    return std::make_unique<DirectoryCache>(where);
}

} // namespace evolive::cache
