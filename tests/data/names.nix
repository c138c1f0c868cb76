# Attribute names that need quoting; each is a derivation named after its index.
{ salt }:
let
  mk = name: derivation { inherit name salt; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo > $out" ]; };
in
{
  "a.b" = mk "dotted";
  "with space" = mk "spaced";
  "quote\"d" = mk "quoted";
  "ünïcødé-✓" = mk "unicode";
  "\${dollar}" = mk "dollar";
  "let" = mk "keyword";
  plain = mk "plain";
  set = { recurseForDerivations = true; "x.y" = mk "nested-dotted"; };
}
