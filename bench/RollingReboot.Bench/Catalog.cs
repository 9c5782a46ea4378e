namespace RollingReboot.Bench;

/// <summary>What the bench runs: scenarios (under tests/scenarios) and, for each, the methods compared.</summary>
public static class Catalog
{
    public const string Rollreboot = "rollreboot";
    public const string Rollreboot2 = "rollreboot-mhd2";
    public const string Rollreboot3 = "rollreboot-mhd3";
    public const string RollrebootAuto = "rollreboot-auto";

    public static readonly IReadOnlyList<string> AllMethods =
        [Rollreboot, Rollreboot2, Rollreboot3, RollrebootAuto, Baseline.Evacuate, Baseline.Evacuate1, Baseline.Greedy, Baseline.Sequential, Baseline.XoRpr];

    /// <summary>Every baseline, in report order.</summary>
    public static readonly IReadOnlyList<string> Baselines = [Baseline.Evacuate, Baseline.Evacuate1, Baseline.Greedy, Baseline.Sequential, Baseline.XoRpr];

    private static readonly string[] s_common = [Rollreboot, Baseline.Evacuate, Baseline.Evacuate1, Baseline.Greedy, Baseline.Sequential, Baseline.XoRpr];

    public static readonly IReadOnlyList<BenchScenario> Scenarios =
    [
        new("six-hosts", "six-hosts-n-plus-1.json", NPlusOne: true, s_common, null),
        new("six-hosts-tight", "bench-six-hosts-tight.json", NPlusOne: true, s_common, null),
        new("hetero-16", "bench-hetero-16.json", NPlusOne: true, s_common, null),
        new("sixteen-half", "bench-sixteen-half.json", NPlusOne: true, [Rollreboot, Rollreboot2, Rollreboot3, RollrebootAuto, .. s_common[1..]], null),

        // A full run of 64 hosts one at a time is about 20 simulated hours (30 min of wall time at scale 40) per
        // method: the run reboots the master and seven more (--hosts), in the full 64-host, 3,000-VM pool.
        new("64-hosts-3000-vms", "bench-64-hosts-3000-vms.json", NPlusOne: true, s_common,
            ["xen01", "xen02", "xen03", "xen04", "xen05", "xen06", "xen07", "xen08"]),

        // The same pool, every host rebooted once, rollreboot only (the baselines would take another 20 simulated hours
        // each): run on its own at a higher time scale (./scripts/bench.sh --scenarios 64-hosts-all --time-scale 200).
        new("64-hosts-all", "bench-64-hosts-3000-vms.json", NPlusOne: true, [Rollreboot], null, OnlyWhenNamed: true),
    ];

    /// <summary>rollreboot itself (any --max-hosts-down), not a baseline.</summary>
    public static bool IsRollreboot(string method) => method is Rollreboot or Rollreboot2 or Rollreboot3 or RollrebootAuto;

    /// <summary>The --max-hosts-down a rollreboot method runs with (null: the default, one host at a time).</summary>
    public static string? MaxHostsDown(string method) => method switch
    {
        Rollreboot2 => "2",
        Rollreboot3 => "3",
        RollrebootAuto => "auto",
        _ => null,
    };

    public static string Describe(string method) => method switch
    {
        Rollreboot => "rollreboot --exec (one host at a time)",
        Rollreboot2 => "rollreboot --exec --max-hosts-down 2",
        Rollreboot3 => "rollreboot --exec --max-hosts-down 3",
        RollrebootAuto => "rollreboot --exec --max-hosts-down auto",
        Baseline.Evacuate => "(a) host.evacuate, XAPI picks targets",
        Baseline.Evacuate1 => "(a') host.evacuate one VM at a time (XCP-ng 8.2's xapi)",
        Baseline.Greedy => "(b) greedy most-free host, 5 parallel",
        Baseline.Sequential => "(c) one VM at a time to most-free host",
        Baseline.XoRpr => "(d) Xen Orchestra rolling pool reboot (evacuate batch 3)",
        _ => method,
    };
}

/// <summary>
/// A scenario in the bench; <paramref name="Hosts"/> limits the run to those hosts (null: all); one
/// <paramref name="OnlyWhenNamed"/> runs only when --scenarios names it.
/// </summary>
public sealed record BenchScenario(string Id, string File, bool NPlusOne, IReadOnlyList<string> Methods, IReadOnlyList<string>? Hosts, bool OnlyWhenNamed = false);
