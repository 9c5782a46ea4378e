using RollingReboot.Core.Planning;

namespace RollingReboot.Core.Tests.Planning;

public class PlanEstimatorTests
{
    private const long Gb = 1_000_000_000;
    // The fluid model alone: every migration may start at once (the stagger is tested on its own).
    private static readonly PlanOptions s_defaults = PlanOptions.Default with { StaggerStarts = false };

    private static PlannedMigration M(string vm, string from, string to, long bytes) =>
        new("uuid-" + vm, vm, from, from, to, to, bytes);

    [Fact]
    public void EvacuationSeconds_OneMigration_IsSetupPlusBytesAtStreamRate()
    {
        // 1 GB of memory moves 1.1 GB at 120 MB/s after 6 s of setup.
        double seconds = PlanEstimator.EvacuationSeconds([M("a", "h1", "h2", Gb)], s_defaults);

        Assert.Equal(6 + (1.1e9 / 120e6), seconds, 6);
    }

    [Fact]
    public void EvacuationSeconds_TwoFromOneSource_EachKeepsTheStreamRate()
    {
        // 250 MB/s shared by two is 125 each, above the 120 MB/s a stream can do.
        double seconds = PlanEstimator.EvacuationSeconds([M("a", "h1", "h2", Gb), M("b", "h1", "h3", Gb)], s_defaults);

        Assert.Equal(6 + (1.1e9 / 120e6), seconds, 6);
    }

    [Fact]
    public void EvacuationSeconds_ThreeFromOneSource_ShareItsLink()
    {
        double seconds = PlanEstimator.EvacuationSeconds(
            [M("a", "h1", "h2", Gb), M("b", "h1", "h3", Gb), M("c", "h1", "h4", Gb)], s_defaults);

        Assert.Equal(6 + (1.1e9 / (250e6 / 3)), seconds, 6);
    }

    [Fact]
    public void EvacuationSeconds_ThreeIntoOneTarget_ShareItsLink()
    {
        double seconds = PlanEstimator.EvacuationSeconds(
            [M("a", "h1", "h9", Gb), M("b", "h2", "h9", Gb), M("c", "h3", "h9", Gb)], s_defaults);

        Assert.Equal(6 + (1.1e9 / (250e6 / 3)), seconds, 6);
    }

    [Fact]
    public void EvacuationSeconds_OneThread_RunsThemOneAfterAnother()
    {
        var options = s_defaults with { Threads = 1 };

        double seconds = PlanEstimator.EvacuationSeconds([M("a", "h1", "h2", Gb), M("b", "h1", "h3", 2 * Gb)], options);

        Assert.Equal(12 + (3.3e9 / 120e6), seconds, 6);
    }

    [Fact]
    public void CompletionSeconds_LargestFirst_AndPerSourceLimitQueuesTheRest()
    {
        var options = s_defaults with { MaxMigrationsPerSource = 1 };
        PlannedMigration[] batch = [M("small", "h1", "h2", Gb), M("big", "h1", "h3", 2 * Gb), M("other", "h5", "h6", Gb)];

        var done = PlanEstimator.CompletionSeconds(batch, options);

        double big = 6 + (2.2e9 / 120e6);
        Assert.Equal(big, done[1], 6);
        Assert.Equal(big + 6 + (1.1e9 / 120e6), done[0], 6);
        Assert.Equal(6 + (1.1e9 / 120e6), done[2], 6);
    }

    [Fact]
    public void CompletionSeconds_SharedLink_FreedBandwidthGoesToTheRest()
    {
        PlannedMigration[] batch = [M("a", "h1", "h2", 3 * Gb), M("b", "h1", "h3", Gb)];

        var done = PlanEstimator.CompletionSeconds(batch, s_defaults with { MigrationModel = new MigrationModel(StreamMBps: 250, HostLinkMBps: 250) });

        // Both set up together (6 s), then share 250 MB/s: 125 each until b's 1.1 GB are done.
        double bDone = 6 + (1.1e9 / 125e6);
        Assert.Equal(bDone, done[1], 6);
        Assert.Equal(bDone + ((3.3e9 - 1.1e9) / 250e6), done[0], 6);
    }

    [Fact]
    public void CompletionSeconds_SetupUsesNoBandwidth()
    {
        // One slot per target and per source is free, so b starts when a is half done; during b's setup a keeps
        // the whole link (250 MB/s), then they share it.
        var options = s_defaults with { MigrationModel = new MigrationModel(StreamMBps: 250, HostLinkMBps: 250), Threads = 1 };
        var two = s_defaults with { MigrationModel = new MigrationModel(StreamMBps: 250, HostLinkMBps: 250, SetupSeconds: 0) };
        PlannedMigration[] batch = [M("a", "h1", "h2", Gb), M("b", "h1", "h3", Gb)];

        var sequential = PlanEstimator.CompletionSeconds(batch, options);
        var noSetup = PlanEstimator.CompletionSeconds(batch, two);

        Assert.Equal(6 + 4.4, sequential[0], 6);
        Assert.Equal(2 * (6 + 4.4), sequential[1], 6);
        Assert.Equal(2.2e9 / 250e6, noSetup[1], 6);
    }

    [Fact]
    public void CompletionSeconds_Staggered_FirstSlotsOpenSetupOverThreadsApart()
    {
        var staggered = PlanOptions.Default with { Threads = 5 };
        PlannedMigration[] batch = [.. Enumerable.Range(0, 5).Select(i => M("v" + i, "h1", "h2", Gb))];

        var done = PlanEstimator.CompletionSeconds(batch, staggered);

        Assert.Equal(6.0 / 5, PlanEstimator.StaggerSeconds(staggered), 9);
        Assert.Equal(0, PlanEstimator.StaggerSeconds(staggered with { StaggerStarts = false }));
        Assert.Equal(0, PlanEstimator.StaggerSeconds(staggered with { Threads = 1 }));
        // Equal VMs that start apart end apart: the first, alone on the link for a while, ends first.
        Assert.Equal(done.Order(), done);
        Assert.True(done[1] - done[0] > 0.1, $"{done[0]} then {done[1]}");
    }

    [Fact]
    public void EvacuationSeconds_ManyEqualVms_StaggeredIsFaster_TheLinkNeverIdlesWhileAllSetUp()
    {
        // 20 VMs of 4.4 GB on the wire, 5 slots, a 250 MB/s link and 120 MB/s streams with 6 s of setup: in lockstep every
        // round of five ends together and the next five set up with nothing on the wire.
        var lockstep = PlanOptions.Default with { Threads = 5, StaggerStarts = false };
        var staggered = lockstep with { StaggerStarts = true };
        PlannedMigration[] batch = [.. Enumerable.Range(0, 20).Select(i => M("v" + i, "h1", "h2", 4 * Gb))];

        var together = PlanEstimator.EvacuationSeconds(batch, lockstep);
        var apart = PlanEstimator.EvacuationSeconds(batch, staggered);

        var linkBound = 20 * 4.4e9 / 250e6;
        Assert.True(apart < together - 2, $"staggered {apart:0.0} s, in lockstep {together:0.0} s");
        Assert.InRange(apart, linkBound, linkBound + 6 + 5 + (4.4e9 / 120e6));
    }

    [Fact]
    public void CompletionSeconds_Empty_IsEmpty() => Assert.Empty(PlanEstimator.CompletionSeconds([], s_defaults));

    [Fact]
    public void StepSeconds_AddsShutdownRebootAndReady() =>
        Assert.Equal(100 + 10 + 300 + 15, PlanEstimator.StepSeconds(100, s_defaults));

    [Fact]
    public void LowerBound_IsBelowTheEstimate_AndRemainingCountsDown()
    {
        var plan = EvacuationPlanner.Plan(EvacuationPlannerTests.SixHostsNPlusOne().Build(), s_defaults, PlanConstraints.None);

        Assert.InRange(PlanEstimator.LowerBoundSeconds(plan), 6 * 325, plan.Estimate.TotalSeconds);
        Assert.Equal(plan.Estimate.TotalSeconds, PlanEstimator.RemainingSeconds(plan, 1), 6);
        Assert.Equal(plan.Estimate.TotalSeconds - plan.Steps[2].StartSeconds, PlanEstimator.RemainingSeconds(plan, 3), 6);
        Assert.Equal(0, PlanEstimator.RemainingSeconds(plan, 7));
    }
}
