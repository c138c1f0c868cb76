with import ./config.nix;
rec {
  packageset = {
    recurseForDerivations = true;
    deeper = {
      recurseForDerivations = true;
      deeper = {
        recurseForDerivations = true;
        nested = mkDerivation { name = "much-too-deep"; };
      };
    };
    nested = mkDerivation { name = "actually-nested"; };
    nested2 = mkDerivation { name = "actually-nested2"; };
  };
  packageset-nested = mkDerivation { name = "actually-top-level"; };
  # Without recurseForDerivations: Hydra forces recursion anyway.
  unmarked = {
    inside = mkDerivation { name = "inside-unmarked"; };
  };
}
