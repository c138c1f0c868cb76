with import ./config.nix;
{
  packages.constituentA = mkDerivation { name = "empty-dir-A"; };
  packages.constituentB = mkDerivation { name = "empty-dir-B"; };
  ok_aggregate = mkDerivation {
    name = "direct_aggregate";
    _hydraAggregate = true;
    _hydraGlobConstituents = true;
    constituents = [ "packages.*" ];
  };
  indirect_aggregate = mkDerivation {
    name = "indirect_aggregate";
    _hydraAggregate = true;
    constituents = [ "ok_aggregate" ];
  };
}
