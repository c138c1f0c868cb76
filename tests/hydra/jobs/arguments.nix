with import ./config.nix;
{ label, flag, extra, ... }:
{
  show = mkDerivation {
    name = "show-${label}";
    flag = if flag then "yes" else "no";
    extra = toString extra.n;
  };
}
