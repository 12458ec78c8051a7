# conf/examples/prometheus.yml and llm-alerts.yml are valid for promtool,
# and the alert rules fire as their unit tests (llm-alerts.test.yml) say.

use strict;
use warnings;
use FindBin;
use Test::More;

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

done_testing();
