#!/usr/bin/perl
# The PromQL of a Grafana dashboard as Prometheus recording rules, so that
# "promtool test rules" can check every expression against recorded data.
#
#   perl util/dashboard-rules.pl [--window 10m] DASHBOARD.json > rules.yml
#
# One rule per query target of every panel (rows included), recorded as
# "dashboard:<panel title>:<refId>", and one per template variable query
# label_values(SELECTOR, LABEL), recorded as "dashboard:var:<name>" =
# count by (LABEL) (SELECTOR). Grafana's variables are replaced: the
# dashboard's own template variables ($instance, ...) by ".*" (their "All"),
# $__rate_interval, $__interval and $__range by the window. Each
# expression is wrapped in round(..., 1 / 1048576), to a multiple of 2^-20,
# so that a test can expect the value it computes, rounded the same way,
# whatever the last bits of PromQL's floating point arithmetic. The output
# is JSON, which promtool reads as YAML. Fails on a variable left over or
# two rules of one name.

use strict;
use warnings;
use JSON::PP;

my $window = '10m';

if (@ARGV >= 2 && $ARGV[0] eq '--window') {
    (undef, $window) = splice @ARGV, 0, 2;
}

my $file = shift @ARGV or die "usage: $0 [--window W] DASHBOARD.json\n";

open my $fh, '<', $file or die "$file: $!\n";
my $d = decode_json(do { local $/; <$fh> });
close $fh;

my %vars = map { $_->{name} => 1 } @{ $d->{templating}{list} // [] };
my (@rules, %seen);

sub substitute {
    my ($expr, $where) = @_;

    $expr =~ s/\$__(?:rate_interval|interval|range)\b/$window/g;
    $expr =~ s/\$\{?(\w+)\}?/exists $vars{$1} ? '.*' : "\$$1"/ge;

    die "$where: variable left in: $expr\n" if $expr =~ /\$/;

    return $expr;
}

sub add {
    my ($record, $expr) = @_;

    die "two rules named $record\n" if $seen{$record}++;

    push @rules, { record => $record,
                   expr => "round($expr, 1 / 1048576)" };
}

sub slug {
    (my $s = lc shift) =~ s/[^a-z0-9]+/_/g;
    $s =~ s/^_|_$//g;
    return $s;
}

sub panels {
    my ($list) = @_;

    for my $p (@$list) {
        panels($p->{panels}) if $p->{panels};

        for my $t (@{ $p->{targets} // [] }) {
            next unless defined $t->{expr};

            my $where = "panel \"$p->{title}\" target $t->{refId}";
            add('dashboard:' . slug($p->{title}) . ':' . $t->{refId},
                substitute($t->{expr}, $where));
        }
    }
}

panels($d->{panels} // []);

for my $v (@{ $d->{templating}{list} // [] }) {
    next unless ($v->{type} // '') eq 'query';

    my $q = ref $v->{query} ? $v->{query}{query} : $v->{query};

    $q =~ /^label_values\((.+),\s*(\w+)\)$/
        or die "variable $v->{name}: not label_values(SELECTOR, LABEL): $q\n";

    add("dashboard:var:$v->{name}",
        "count by ($2) (" . substitute($1, "variable $v->{name}") . ")");
}

print JSON::PP->new->canonical->pretty->encode({
    groups => [{ name => 'grafana-dashboard', interval => '1m',
                 rules => \@rules }],
});
