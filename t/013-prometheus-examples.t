# conf/examples/prometheus.yml and llm-alerts.yml are valid for promtool,
# and the alert rules fire as their unit tests (llm-alerts.test.yml) say;
# every query of grafana-dashboard.json is valid PromQL (as the recording
# rules util/dashboard-rules.pl makes of them; their values are checked by
# t/014-grafana-dashboard.t).

use strict;
use warnings;
use FindBin;
use Test::More;
use File::Temp ();

my ($promtool) = grep { -x } map { "$_/promtool" } split /:/, $ENV{PATH};

plan skip_all => 'promtool is not installed (apt-get install prometheus)'
    unless $promtool;

my $dir = "$FindBin::Bin/../conf/examples";

for my $check (['check', 'config', 'prometheus.yml'],
               ['check', 'rules', 'llm-alerts.yml'],
               ['test', 'rules', 'llm-alerts.test.yml'])
{
    my $out = `cd '$dir' && '$promtool' @$check 2>&1`;
    is($?, 0, "promtool @$check") or diag($out);
}

my $rules = `$^X '$FindBin::Bin/../util/dashboard-rules.pl' '$dir/grafana-dashboard.json'`;
is($?, 0, 'util/dashboard-rules.pl grafana-dashboard.json');

my $tmp = File::Temp->new(SUFFIX => '.yml');
print $tmp $rules;
close $tmp;

my $out = `'$promtool' check rules '$tmp' 2>&1`;
is($?, 0, 'promtool check rules: the dashboard queries') or diag($out);
like($out, qr/SUCCESS: (\d+) rules found/, 'rules found');

done_testing();
