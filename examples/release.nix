# A small jobset in the shape Hydra expects: packages with dependencies, a
# nested package set, a broken job, and an aggregate over named jobs.
# Evaluate it with: build/bin/evolive-eval-jobs --workers 2 --meta --constituents examples/release.nix
{ system ? "x86_64-linux", salt ? "" }:
let
  mk = name: deps: derivation {
    inherit name system salt;
    builder = "/bin/sh";
    args = [ "-c" "echo ${name} > $out" ];
    buildInputs = deps;
  } // { meta.description = "The ${name} example package"; };

  zlib = mk "zlib-1.3" [ ];
  openssl = mk "openssl-3.0" [ zlib ];
  curl = mk "curl-8.4" [ zlib openssl ];
in
{
  inherit zlib openssl curl;

  pythonPackages = {
    recurseForDerivations = true;
    requests = mk "python-requests-2.31" [ curl ];
  };

  broken = throw "this job is broken on purpose";

  release = mk "release" [ ] // {
    _hydraAggregate = true;
    constituents = [ "zlib" "curl" "pythonPackages.requests" ];
  };
}
