with import ./config.nix;
{
  dep = mkDerivation { name = "dep-1.0"; };
}
