using System.Diagnostics;
using RollingReboot.Core.Planning;

namespace RollingReboot.Core.Tests.Planning;

public class PlannerPerformanceTests
{
    [Fact]
    public void Plan_64HostsAnd3200Vms_TakesWellUnderASecond()
    {
        var pool = new TestPool { Name = "BIG" };
        var rng = new Random(64);
        long[] sizes = [512, 1024, 2048, 4096, 8192, 16384];
        for (int h = 1; h <= 64; h++)
        {
            pool.AddHost("xen" + h, 512 * 1024, h == 1);
            for (int v = 0; v < 50; v++)
            {
                pool.AddVm($"i-{h}-{v}-VM", "xen" + h, TestPool.WithOverhead(sizes[rng.Next(sizes.Length)]));
            }
        }

        var snapshot = pool.Build();
        var options = PlanOptions.Default with { ReturnVms = true };
        _ = EvacuationPlanner.Plan(snapshot, options, PlanConstraints.None);

        var sw = Stopwatch.StartNew();
        var plan = EvacuationPlanner.Plan(snapshot, options, PlanConstraints.None);
        sw.Stop();

        Assert.True(plan.CanRun);
        Assert.Equal(64, plan.Steps.Count);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(1), $"planning took {sw.Elapsed.TotalMilliseconds:0} ms");
    }
}
