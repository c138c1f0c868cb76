with import ./config.nix;
{ src }:
{
  copy = mkDerivation {
    name = "git-input";
    script = "cp -r ${src} $out";
    rev = src.rev;
    revCount = toString src.revCount;
    shortRev = src.shortRev;
    gitTag = src.gitTag;
    inputType = src.inputType;
  };
}
