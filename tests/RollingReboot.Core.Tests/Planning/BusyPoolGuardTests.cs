using RollingReboot.Core.Planning;

namespace RollingReboot.Core.Tests.Planning;

/// <summary>The busy pool guard: backups and copies anywhere in the pool block the start unless --ignore-running-tasks.</summary>
public sealed class BusyPoolGuardTests
{
    private static TestPool Pool()
    {
        var pool = new TestPool();
        pool.AddHost("h1", 65536, master: true);
        pool.AddHost("h2", 65536);
        pool.AddHost("h3", 65536);
        pool.AddVm("web", "h1", 4 * TestPool.GiB);
        return pool;
    }

    [Fact]
    public void AHaltedVmBeingExported_AndARunningOneBeingSnapshotted_BlockTheStart_NamingBoth()
    {
        var pool = Pool();
        pool.AddVm("archive", null, 4 * TestPool.GiB).PowerState = "Halted";
        pool.Vms.Single(v => v.Name == "archive").Operations.Add("export");
        pool.Vms.Single(v => v.Name == "web").Operations.Add("snapshot");

        var plan = EvacuationPlanner.Plan(pool.Build(), new PlanOptions(), PlanConstraints.None);

        var blocker = Assert.Single(plan.Blockers, b => b.Code == PlanCodes.PoolBackupRunning);
        Assert.Contains("archive (export), web (snapshot)", blocker.Message, StringComparison.Ordinal);
        Assert.Contains("--ignore-running-tasks", blocker.Fix, StringComparison.Ordinal);
        Assert.DoesNotContain(EvacuationPlanner.Plan(pool.Build(), new PlanOptions { IgnoreRunningTasks = true }, PlanConstraints.None).Blockers, b => b.Code == PlanCodes.PoolBackupRunning);
    }

    [Fact]
    public void AMigrationInProgress_IsNoBackup()
    {
        var pool = Pool();
        pool.Vms.Single(v => v.Name == "web").Operations.Add("pool_migrate");
        Assert.DoesNotContain(EvacuationPlanner.Plan(pool.Build(), new PlanOptions(), PlanConstraints.None).Blockers, b => b.Code == PlanCodes.PoolBackupRunning);
    }
}
