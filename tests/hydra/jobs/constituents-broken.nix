with import ./config.nix;
rec {
  constituentA = null;
  constituentB = mkDerivation { name = "empty-dir-B"; };
  mixed_aggregate = mkDerivation {
    name = "mixed_aggregate";
    _hydraAggregate = true;
    constituents = [ "constituentA" constituentB ];
  };
}
