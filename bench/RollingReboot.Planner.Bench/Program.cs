using System.Diagnostics;
using System.Globalization;
using RollingReboot.Core.Planning;
using RollingReboot.Core.Pool;

// Plans big pools and prints the time and memory the planner takes: 64 hosts × 3,200 VMs, roomy and tight,
// one host at a time and four at a time.
const long MiB = 1024L * 1024;
long[] sizes = [512, 1024, 2048, 4096, 8192, 16384];

Measure("64 hosts x 3200 VMs, ~65% full, one host at a time", Pool(64, 50, 0.65, 1), PlanOptions.Default);
Measure("64 hosts x 3200 VMs, ~65% full, 4 hosts at a time", Pool(64, 50, 0.65, 1), PlanOptions.Default with { MaxHostsDown = 4 });
Measure("64 hosts x 3200 VMs, ~65% full, with migrate-back", Pool(64, 50, 0.65, 1), PlanOptions.Default with { ReturnVms = true });
Measure("64 hosts x 3200 VMs, ~97% full (the master's largest VMs fit nowhere)", Pool(64, 50, 0.97, 1), PlanOptions.Default);
Measure("64 hosts x 3200 VMs, ~99.5% full (capacity blockers)", Pool(64, 50, 0.995, 1), PlanOptions.Default);
return 0;

void Measure(string name, PoolSnapshot pool, PlanOptions options)
{
    // Warm up (JIT), then take the best of a few runs and the allocation of one.
    var plan = EvacuationPlanner.Plan(pool, options, PlanConstraints.None);
    double best = double.MaxValue;
    long allocated = 0;
    for (int i = 0; i < 5; i++)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        var sw = Stopwatch.StartNew();
        plan = EvacuationPlanner.Plan(pool, options, PlanConstraints.None);
        sw.Stop();
        allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        best = Math.Min(best, sw.Elapsed.TotalMilliseconds);
    }

    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"{name}: {best:0.0} ms, {allocated / 1e6:0.0} MB allocated; {plan.Steps.Count} steps, {plan.Steps.Max(s => s.Wave)} waves, " +
        $"{plan.Estimate.Migrations} migrations, {plan.Blockers.Count} blockers, estimate {Units.Duration(plan.Estimate.TotalSeconds)} " +
        $"(lower bound {Units.Duration(PlanEstimator.LowerBoundSeconds(plan))})"));
}

PoolSnapshot Pool(int hostCount, int vmsPerHost, double fill, int seed)
{
    var rng = new Random(seed);
    var hosts = new List<HostState>();
    var vms = new List<VmState>();
    for (int h = 1; h <= hostCount; h++)
    {
        long total = 512 * 1024 * MiB, dom0 = 8 * 1024 * MiB;
        long budget = (long)((total - dom0) * fill);
        string host = $"host-{h:000}";
        var drawn = Enumerable.Range(0, vmsPerHost).Select(_ => sizes[rng.Next(sizes.Length)]).ToList();
        double scale = budget / (double)(drawn.Sum() * MiB);
        long used = 0;
        for (int v = 0; v < vmsPerHost; v++)
        {
            long memory = Math.Max(256, (long)(drawn[v] * scale)) * MiB;
            used += memory;
            vms.Add(new VmState($"vm-{h:000}-{v:00}", $"i-{h}-{v}-VM", "Running", host, memory, true, ["sr-nfs"], [], false, false, false, "", []));
        }

        hosts.Add(new HostState(host, $"xen{h}", $"10.0.{h / 250}.{h % 250}", true, true, total, total - dom0 - used, 0, null, null, ["reboot_host"], [], []));
    }

    return new PoolSnapshot("pool", "BENCH", "host-001", HaSettings.Disabled, new Dictionary<string, string>(), [], hosts, vms,
        [new SrInfo("sr-nfs", "nfs", true, null)]);
}
