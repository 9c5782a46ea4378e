using Microsoft.Extensions.Time.Testing;
using RollingReboot.Core.Planning;
using RollingReboot.Core.Ports;
using RollingReboot.Core.Run;
using RollingReboot.Core.Run.Engine;
using RollingReboot.Core.Tests.Run.Fakes;

namespace RollingReboot.Core.Tests.Run;

/// <summary>The run's CloudStack steps against the fake management server: unmanage, preflight's reading of it, re-manage.</summary>
public sealed class CloudStackStepsTests
{
    private static async Task<PreflightResult> PreflightAsync(CrashHarness h) =>
        await Preflight.RunAsync(h.Pool, new ClusterBinding(h.Cloud!, h.Cloud!.Cluster), PlanOptions.Default, new HashSet<string>());

    [Fact]
    public async Task PrepareUnmanagedError_RunUnmanagesAgainBeforeAnyHost_AndManagesAtTheEnd()
    {
        var h = new CrashHarness();
        h.Cloud!.ManagedState = "PrepareUnmanagedError";

        var report = await h.StartAsync(new MemoryJournalStore(), RunMode.Run);

        Assert.Equal(RunOutcome.Done, report!.Outcome);
        Assert.Equal(["Unmanaged", "Managed"], h.Cloud.Updates);
        Assert.Equal("Managed", h.Cloud.ManagedState);
        Assert.All(h.Pool.Hosts, x => Assert.Equal(1, x.BootCount));
        Assert.Contains(h.Log.Lines, l => l.Contains("PrepareUnmanagedError", StringComparison.Ordinal) && l.Contains("again", StringComparison.Ordinal));
    }

    [Fact]
    public async Task PrepareUnmanagedError_UnmanageFailsAgain_StopsBeforeAnyHost()
    {
        var h = new CrashHarness();
        h.Cloud!.ManagedState = "PrepareUnmanagedError";
        h.Cloud.UnmanageResult = "PrepareUnmanagedError";

        var report = await h.StartAsync(new MemoryJournalStore(), RunMode.Run);

        Assert.Equal(RunOutcome.StoppedRestored, report!.Outcome);
        Assert.Contains("PrepareUnmanagedError instead of Unmanaged", report.Message, StringComparison.Ordinal);
        Assert.All(h.Pool.Hosts, x => Assert.Equal(0, x.BootCount));
        Assert.True(h.Pool.Ha.Enabled);
    }

    [Fact]
    public async Task PrepareUnmanaged_ThatDoesNotEnd_IsWaitedForThenAskedAgain()
    {
        var h = new CrashHarness();
        h.Cloud!.ManagedState = "PrepareUnmanaged";

        RunReport? report;
        await using (new Ticker(h.Clock, TimeSpan.FromSeconds(5)))
        {
            report = await h.StartAsync(new MemoryJournalStore(), RunMode.Run);
        }

        Assert.Equal(RunOutcome.Done, report!.Outcome);
        Assert.Equal(["Unmanaged", "Managed"], h.Cloud.Updates);
        Assert.Contains(h.Log.Lines, l => l.Contains("still PrepareUnmanaged", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Preflight_GivenThePoolJustRead_PlansOnIt_AndGivesThePlanOfAFreshRead()
    {
        var h = new CrashHarness();
        var snapshot = await h.Pool.ReadAsync();
        var fresh = await PreflightAsync(h);

        // The pool changes after the read the caller hands over: the plan is the one of that read, not of a new one.
        h.Pool.Hosts[1].Enabled = false;
        var given = await Preflight.RunAsync(h.Pool, new ClusterBinding(h.Cloud!, h.Cloud!.Cluster), PlanOptions.Default, new HashSet<string>(), snapshot: snapshot);

        static string Shape(PreflightResult p) => string.Join("; ", p.Plan.Hosts.Select(x => $"{x.Name} {x.Action}")) + " | " +
            string.Join("; ", p.Plan.Steps.Select(s => $"{s.HostName}: {s.Migrations.Count}")) + " | " + string.Join("; ", p.Plan.Warnings.Select(w => w.Code));
        Assert.Same(snapshot, given.Pool);
        Assert.Equal(Shape(fresh), Shape(given));
        Assert.Equal(fresh.Plan.Blockers, given.Plan.Blockers);
        Assert.NotEqual(Shape(fresh), Shape(await PreflightAsync(h)));
    }

    [Fact]
    public async Task Preflight_CloudStackFails_WhileXapiIsAsked_ItsFailureIsTheOneReported()
    {
        var h = new CrashHarness();
        // listVirtualMachines fails after a moment, so XAPI is being asked meanwhile.
        var failing = new VmListCloud(h.Cloud!, async (_, _) =>
        {
            await Task.Yield();
            throw new CloudStackException(530, 4250, "listVirtualMachines failed");
        });
        var cloud = new ClusterBinding(failing, h.Cloud!.Cluster);

        var e = await Assert.ThrowsAsync<CloudStackException>(() => Preflight.RunAsync(h.Pool, cloud, PlanOptions.Default, new HashSet<string>()));

        Assert.Contains("listVirtualMachines", e.ErrorText, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Preflight_GivenCloudStackReadsStartedAhead_UsesThem_AndAsksCloudStackNoMore()
    {
        // The dry run starts CloudStack's reads, then reads the pool itself and hands both to preflight.
        var h = new CrashHarness();
        var vmLists = 0;
        var counting = new VmListCloud(h.Cloud!, (list, _) =>
        {
            Interlocked.Increment(ref vmLists);
            return list();
        });
        var cloud = new ClusterBinding(counting, h.Cloud!.Cluster);
        var fresh = await Preflight.RunAsync(h.Pool, cloud, PlanOptions.Default, new HashSet<string>());
        Assert.Equal(1, vmLists);

        await using (var ahead = Preflight.CloudStackAhead.Start(cloud, CancellationToken.None))
        {
            var snapshot = await h.Pool.ReadAsync();
            var given = await Preflight.RunAsync(h.Pool, cloud, PlanOptions.Default, new HashSet<string>(), snapshot: snapshot, cloudAhead: ahead);
            Assert.Equal(fresh.Plan.Steps.Select(st => (st.HostName, st.Migrations.Count)), given.Plan.Steps.Select(st => (st.HostName, st.Migrations.Count)));
            Assert.Equal(fresh.CloudStackHosts.Select(x => x.Name), given.CloudStackHosts.Select(x => x.Name));
        }

        Assert.Equal(2, vmLists);

        // Reads started for another binding are not taken for this one: it is read as usual.
        await using (var other = Preflight.CloudStackAhead.Start(new ClusterBinding(counting, h.Cloud!.Cluster), CancellationToken.None))
        {
            await Preflight.RunAsync(h.Pool, cloud, PlanOptions.Default, new HashSet<string>(), cloudAhead: other);
        }

        Assert.Equal(4, vmLists);
    }

    [Fact]
    public async Task CloudStackAhead_NotUsed_BecauseXapiFailedFirst_StopsItsReadsWhenDisposed()
    {
        var h = new CrashHarness();
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var cancelled = false;
        var hanging = new VmListCloud(h.Cloud!, async (_, cancellationToken) =>
        {
            // The VM list ends only when cancelled.
            started.TrySetResult();
            try
            {
                await Task.Delay(Timeout.InfiniteTimeSpan, TimeProvider.System, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                cancelled = true;
                throw;
            }

            return [];
        });
        var ahead = Preflight.CloudStackAhead.Start(new ClusterBinding(hanging, h.Cloud!.Cluster), CancellationToken.None);
        await started.Task.WaitAsync(TimeSpan.FromSeconds(20));

        await ahead.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(20));

        Assert.True(cancelled);
    }

    /// <summary>CloudStack whose listVirtualMachines is <paramref name="listVms"/> (given the real list); every other call is the fake's.</summary>
    private sealed class VmListCloud(ICloudStack inner, Func<Func<Task<IReadOnlyList<CloudStackVm>>>, CancellationToken, Task<IReadOnlyList<CloudStackVm>>> listVms) : ICloudStack
    {
        public Task<IReadOnlyList<CloudStackCluster>> FindClustersAsync(string name, string? zone, CancellationToken cancellationToken = default) => inner.FindClustersAsync(name, zone, cancellationToken);

        public Task<CloudStackCluster> GetClusterAsync(string clusterId, CancellationToken cancellationToken = default) => inner.GetClusterAsync(clusterId, cancellationToken);

        public Task<IReadOnlyList<CloudStackCluster>> ListClustersAsync(string zone, CancellationToken cancellationToken = default) => inner.ListClustersAsync(zone, cancellationToken);

        public Task<IReadOnlyList<CloudStackHost>> ListHostsAsync(string clusterId, CancellationToken cancellationToken = default) => inner.ListHostsAsync(clusterId, cancellationToken);

        public Task<string> SetManagedStateAsync(string clusterId, bool managed, CancellationToken cancellationToken = default) => inner.SetManagedStateAsync(clusterId, managed, cancellationToken);

        public Task<IReadOnlyList<CloudStackVm>> ListVirtualMachinesAsync(string clusterId, CancellationToken cancellationToken = default) =>
            listVms(() => inner.ListVirtualMachinesAsync(clusterId, cancellationToken), cancellationToken);

        public Task<IReadOnlyList<CloudStackAsyncJob>> ListPendingAsyncJobsAsync(CancellationToken cancellationToken = default) => inner.ListPendingAsyncJobsAsync(cancellationToken);

        public Task<IReadOnlyList<CloudStackDedicatedHost>> ListDedicatedHostsAsync(CancellationToken cancellationToken = default) => inner.ListDedicatedHostsAsync(cancellationToken);
    }

    [Fact]
    public async Task Preflight_PrepareUnmanagedError_NamesTheStateAndWhatTheRunDoes()
    {
        var h = new CrashHarness();
        h.Cloud!.ManagedState = "PrepareUnmanagedError";

        var pre = await PreflightAsync(h);

        var warning = Assert.Single(pre.Plan.Warnings, w => w.Code == "CLOUDSTACK_PREPARE_UNMANAGED_ERROR");
        Assert.Contains("still pings", warning.Message, StringComparison.Ordinal);
        Assert.Contains("unmanage it again", warning.Fix, StringComparison.Ordinal);
        Assert.Contains("managedstate=Managed", warning.Fix, StringComparison.Ordinal);
        Assert.Empty(pre.Plan.Blockers);
    }

    [Fact]
    public async Task Preflight_PrepareUnmanagedError_HostConnecting_IsABlocker()
    {
        var h = new CrashHarness();
        h.Cloud!.ManagedState = "PrepareUnmanagedError";
        h.Cloud.HostStates["xen2"] = "Connecting";

        var pre = await PreflightAsync(h);

        var blocker = Assert.Single(pre.Plan.Blockers, b => b.Code == "CLOUDSTACK_HOST_STATE");
        Assert.Equal("xen2", blocker.Host);
        Assert.Contains("should not be in Connecting status", blocker.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Preflight_OnlyStrictAntiAffinityIsARule_NonStrictIsSaidToBeAPreference()
    {
        var h = new CrashHarness();
        CloudStackVm Vm(string name, string host, string group, string type) =>
            new("cs-" + name, name, host, [new CloudStackAffinityGroup("g-" + group, group, type)]) { State = "Running" };
        h.Cloud!.Vms.AddRange([
            Vm("vm-1-1", "xen1", "soft", CloudStackAffinityTypes.NonStrictHostAntiAffinity),
            Vm("vm-2-1", "xen2", "soft", CloudStackAffinityTypes.NonStrictHostAntiAffinity),
            Vm("vm-1-2", "xen1", "hard", CloudStackAffinityTypes.HostAntiAffinity),
            Vm("vm-2-2", "xen2", "hard", CloudStackAffinityTypes.HostAntiAffinity)]);

        var pre = await PreflightAsync(h);

        Assert.Equal(["vm-1-2", "vm-2-2"], pre.AntiAffinity.Keys.Order(StringComparer.Ordinal));
        Assert.All(pre.AntiAffinity.Values, g => Assert.Equal(["hard"], g));
        Assert.Contains(pre.Plan.Warnings, w => w.Code == "CLOUDSTACK_NON_STRICT_ANTI_AFFINITY" && w.Message.Contains("soft", StringComparison.Ordinal));
        Assert.Equal(["vm-1-1", "vm-2-1"], pre.Placement.PreferredAntiAffinity.Keys.Order(StringComparer.Ordinal));
    }

    [Theory]
    [InlineData("Maintenance")]
    [InlineData("Disabled")]
    [InlineData("PrepareForMaintenance")]
    public async Task Preflight_HostNotEnabledInCloudStack_TakesNoVmsAndIsLeftAlone(string resourceState)
    {
        var h = new CrashHarness();
        h.Cloud!.ResourceStates["xen3"] = resourceState;

        var pre = await PreflightAsync(h);

        var xen3 = Assert.Single(pre.Plan.Hosts, x => x.Name == "xen3");
        Assert.Equal(HostAction.Skip, xen3.Action);
        Assert.Contains($"CloudStack resource state {resourceState}", xen3.Reason, StringComparison.Ordinal);
        Assert.DoesNotContain(pre.Plan.Steps.SelectMany(s => s.Migrations), m => m.ToName == "xen3");
        Assert.Contains(pre.Plan.Warnings, w => w.Code == "CLOUDSTACK_HOST_NOT_ENABLED" && w.Message.Contains("xen3", StringComparison.Ordinal));
        Assert.DoesNotContain(pre.Plan.Warnings, w => w.Code == PlanCodes.HostDisabledPending);
        // The plan speaks of the pool as XAPI has it: xen3 is enabled there.
        Assert.True(pre.Plan.Pool.Hosts.Single(x => x.Name == "xen3").Enabled);
        Assert.Empty(pre.Plan.Blockers);
    }

    [Fact]
    public async Task Preflight_HostDisabledInXapi_WarnsThatCloudStackWillNotConnectIt()
    {
        var h = new CrashHarness();
        h.Pool.H("h1").Enabled = false;

        var pre = await PreflightAsync(h);

        var warning = Assert.Single(pre.Plan.Warnings, w => w.Code == "CLOUDSTACK_HOST_DISABLED_IN_XAPI");
        Assert.Contains("Pool master xen1", warning.Message, StringComparison.Ordinal);
        Assert.Contains("xe host-enable host=xen1", warning.Fix, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Preflight_DedicatedHostsUnreadable_SaysDedicationIsNotChecked()
    {
        var h = new CrashHarness();
        h.Cloud!.DedicatedFails = 401;

        var pre = await PreflightAsync(h);

        Assert.Contains(pre.Plan.Warnings, w => w.Code == "CLOUDSTACK_RULES_UNREAD" && w.Message.Contains("dedication is not checked", StringComparison.Ordinal));
        Assert.Empty(pre.Plan.Blockers);
    }

    [Fact]
    public async Task Preflight_ADedicatedHost_ThePlanSendsNoOtherVmThere_AndNamesTheRule()
    {
        var h = new CrashHarness();
        h.Cloud!.Dedicated.Add(new CloudStackDedicatedHost("h4", "xen4", "d1", "a1", "g-ded"));
        var pre = await PreflightAsync(h);

        Assert.Empty(pre.Plan.Blockers);
        var moves = pre.Plan.Steps.SelectMany(s => s.Migrations).ToList();
        Assert.NotEmpty(moves);
        Assert.DoesNotContain(moves, m => m.ToName == "xen4");
        Assert.All(moves, m => Assert.StartsWith("not on xen4: xen4 is dedicated (through dedication group g-ded) and", m.Rule, StringComparison.Ordinal));
        Assert.Contains(pre.Plan.Warnings, w => w.Code == "CLOUDSTACK_PLACEMENT_RULES");
    }

    [Fact]
    public async Task Restore_MasterDisabledInXapi_ManagedThenAnOperatorActionWithoutWaiting()
    {
        // xen4 left out takes the VMs of the hosts rebooted before any other is back.
        var h = new CrashHarness(options: new RunOptions { Operator = "test", Machine = "test", UseSshProof = false, Plan = PlanOptions.Default with { IgnoreHosts = ["xen4"] } });
        h.Pool.H("h1").Enabled = false;
        h.Cloud!.ReconnectReads = 1000;

        var report = await h.StartAsync(new MemoryJournalStore(), RunMode.Run);

        Assert.True(report!.Outcome == RunOutcome.NeedsOperator, report.Message + string.Join("; ", report.Plan?.Blockers.Select(b => b.Code + " " + b.Message) ?? []));
        Assert.Equal("Managed", h.Cloud.ManagedState);
        var action = Assert.Single(report.OperatorActions);
        Assert.Contains("pool master xen1 is disabled in XAPI", action, StringComparison.Ordinal);
        Assert.Contains("xe host-enable host=xen1", action, StringComparison.Ordinal);
        Assert.Equal(0, h.Pool.H("h1").BootCount);
    }

    [Fact]
    public async Task Restore_HostsReconnectAtTheAgentScan_WaitedForAndReported()
    {
        var h = new CrashHarness();
        h.Cloud!.ReconnectReads = 6;

        RunReport? report;
        await using (new Ticker(h.Clock, TimeSpan.FromSeconds(1)))
        {
            report = await h.StartAsync(new MemoryJournalStore(), RunMode.Run);
        }

        Assert.Equal(RunOutcome.Done, report!.Outcome);
        Assert.Contains(report.Restored, r => r.StartsWith("CloudStack cluster C Managed, all 4 hosts Up after ", StringComparison.Ordinal));
        Assert.Contains(h.Log.Lines, l => l.StartsWith("I CloudStack reconnecting cluster {Cluster}", StringComparison.Ordinal) && l.Contains("| C, 0, 4, ", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Restore_CloudStackShowsAVmOnAnotherHost_ReportedAsANote()
    {
        var h = new CrashHarness();
        h.Cloud!.StaleHosts["vm-2-1"] = "xen2";

        var report = await h.StartAsync(new MemoryJournalStore(), RunMode.Run);

        Assert.Equal(RunOutcome.Done, report!.Outcome);
        var where = h.Pool.H(h.Pool.Vms.Single(v => v.Name == "vm-2-1").Host).Name;
        Assert.NotEqual("xen2", where);
        var note = Assert.Single(report.Notes);
        Assert.Contains($"CloudStack shows VM vm-2-1 on xen2, XAPI runs it on {where}", note, StringComparison.Ordinal);
    }
}
