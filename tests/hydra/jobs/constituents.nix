with import ./config.nix;
rec {
  constituentA = mkDerivation { name = "empty-dir-A"; };
  constituentA_alias = constituentA;
  constituentB = mkDerivation { name = "empty-dir-B"; };
  direct_aggregate = mkDerivation {
    name = "direct_aggregate";
    _hydraAggregate = true;
    constituents = [ constituentA ];
  };
  indirect_aggregate = mkDerivation {
    name = "indirect_aggregate";
    _hydraAggregate = true;
    constituents = [ "constituentA" ];
  };
  mixed_aggregate = mkDerivation {
    name = "mixed_aggregate";
    _hydraAggregate = true;
    constituents = [ "constituentA_alias" constituentB ];
  };
}
