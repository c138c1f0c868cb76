with import ./config.nix;
{
  empty_dir = mkDerivation {
    name = "empty-dir";
    meta.maintainers = [ "alice@invalid.org" ];
  };
  fails = mkDerivation {
    name = "fails";
    script = "exit 1";
  };
  succeed_with_failed = mkDerivation {
    name = "succeed-with-failed";
    script = "mkdir -p $out/nix-support; touch $out/nix-support/failed";
  };
}
