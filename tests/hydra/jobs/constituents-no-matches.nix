with import ./config.nix;
{
  non_match_aggregate = mkDerivation {
    name = "mixed_aggregate";
    _hydraAggregate = true;
    _hydraGlobConstituents = true;
    constituents = [ "tests.*" ];
  };
  dummy = mkDerivation { name = "dummy"; };
}
