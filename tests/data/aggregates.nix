# Hydra-style aggregates: constituents as derivations, as names, as globs,
# an aggregate of an aggregate, and one naming jobs that fail or do not exist.
{ salt }:
let
  mk = name: attrs: derivation ({ inherit name salt; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo > $out" ]; } // attrs);
  pkgs = { a = mk "a" { }; b = mk "b" { }; c = mk "c" { }; };
in
pkgs // {
  tests = { recurseForDerivations = true; t1 = mk "t1" { }; t2 = mk "t2" { }; };
  broken = throw "broken job";
  byDrv = mk "by-drv" { _hydraAggregate = true; constituents = [ pkgs.a pkgs.b ]; };
  byName = mk "by-name" { _hydraAggregate = true; constituents = [ "a" "tests.t1" ]; };
  byGlob = mk "by-glob" { _hydraAggregate = true; _hydraGlobConstituents = true; constituents = [ "tests.*" ]; };
  ofAggregate = mk "of-aggregate" { _hydraAggregate = true; constituents = [ "byName" "c" ]; };
  withMissing = mk "with-missing" { _hydraAggregate = true; constituents = [ "a" "nonexistent" "broken" ]; };
}
