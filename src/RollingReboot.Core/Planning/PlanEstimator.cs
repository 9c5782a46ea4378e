namespace RollingReboot.Core.Planning;

/// <summary>
/// Estimates how long migrations and reboots take, with the migration model of <see cref="MigrationModel"/>:
/// an event-driven fluid simulation. Used by the planner for each step and by the run for its ETAs.
/// </summary>
public static class PlanEstimator
{
    private const double Epsilon = 1e-9;

    /// <summary>Seconds a host is away once empty: shutdown, reboot, toolstack and checks.</summary>
    public static double HostDowntimeSeconds(PlanOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return options.ShutdownSeconds + options.RebootSeconds + options.HostReadySeconds;
    }

    /// <summary>A step: its evacuation, then the host's downtime.</summary>
    public static double StepSeconds(double evacuationSeconds, PlanOptions options) =>
        evacuationSeconds + HostDowntimeSeconds(options);

    /// <summary>Seconds until the last of these migrations ends, when they are started together as one batch.</summary>
    public static double EvacuationSeconds(IReadOnlyList<PlannedMigration> migrations, PlanOptions options)
    {
        var done = CompletionSeconds(migrations, options);
        double max = 0;
        foreach (var t in done)
        {
            max = Math.Max(max, t);
        }

        return max;
    }

    /// <summary>
    /// When each migration (same index as <paramref name="migrations"/>) ends. Largest VMs start first; at most
    /// <see cref="PlanOptions.Threads"/> run at once, and at most <see cref="PlanOptions.MaxMigrationsPerSource"/> /
    /// <see cref="PlanOptions.MaxMigrationsPerTarget"/> per host. A migration waiting for a limit lets smaller ones
    /// that fit start before it.
    /// </summary>
    public static IReadOnlyList<double> CompletionSeconds(IReadOnlyList<PlannedMigration> migrations, PlanOptions options)
    {
        ArgumentNullException.ThrowIfNull(migrations);
        ArgumentNullException.ThrowIfNull(options);
        int n = migrations.Count;
        var done = new double[n];
        if (n == 0)
        {
            return done;
        }

        var model = options.MigrationModel;
        int threads = Math.Max(1, options.Threads);
        int maxSource = options.EffectiveMaxMigrationsPerSource;
        int maxTarget = options.EffectiveMaxMigrationsPerTarget;
        double streamRate = model.StreamWireMBps * MigrationModel.BytesPerMB;
        double linkRate = model.HostLinkMBps * MigrationModel.BytesPerMB;

        // Hosts as small integers, so the simulation never iterates a dictionary.
        var hostIds = new Dictionary<string, int>(StringComparer.Ordinal);
        var source = new int[n];
        var target = new int[n];
        for (int i = 0; i < n; i++)
        {
            source[i] = HostId(hostIds, migrations[i].FromUuid);
            target[i] = HostId(hostIds, migrations[i].ToUuid);
        }

        int hosts = hostIds.Count;
        var sourceActive = new int[hosts];
        var targetActive = new int[hosts];
        var sourceTransfers = new int[hosts];
        var targetTransfers = new int[hosts];

        var order = Enumerable.Range(0, n).ToArray();
        Array.Sort(order, (a, b) => CompareForStart(migrations[a], migrations[b], a, b));
        var started = new bool[n];
        int firstPending = 0;

        // Active migrations: index, whether still in setup, and what remains (seconds of setup or bytes).
        var active = new List<int>(threads);
        var inSetup = new bool[n];
        var remaining = new double[n];
        var rate = new double[n];
        var finished = new bool[n];
        int completed = 0;
        double now = 0;
        // The slots open one after another, SetupSeconds / threads apart (as the run staggers them), so that migrations
        // of equal size do not set up, move and end in lockstep with the link idle while all of them set up again.
        double stagger = StaggerSeconds(options);
        int slotsOpened = 0;

        while (completed < n)
        {
            for (int p = firstPending; p < n && active.Count < threads; p++)
            {
                if (slotsOpened < threads && now + Epsilon < slotsOpened * stagger)
                {
                    break;
                }

                int m = order[p];
                if (started[m] || sourceActive[source[m]] >= maxSource || targetActive[target[m]] >= maxTarget)
                {
                    continue;
                }

                started[m] = true;
                slotsOpened++;
                sourceActive[source[m]]++;
                targetActive[target[m]]++;
                inSetup[m] = true;
                remaining[m] = Math.Max(0, model.SetupSeconds);
                active.Add(m);
            }

            while (firstPending < n && started[order[firstPending]])
            {
                firstPending++;
            }

            // Setups that are over become transfers; transfers of nothing are over.
            bool changed = true;
            while (changed)
            {
                changed = false;
                for (int k = active.Count - 1; k >= 0; k--)
                {
                    int m = active[k];
                    if (inSetup[m] && remaining[m] <= Epsilon)
                    {
                        inSetup[m] = false;
                        remaining[m] = model.WireBytes(Math.Max(0, migrations[m].MemoryBytes));
                        sourceTransfers[source[m]]++;
                        targetTransfers[target[m]]++;
                        changed = true;
                    }

                    if (!inSetup[m] && remaining[m] <= Epsilon)
                    {
                        Finish(m, k);
                        changed = true;
                    }
                }
            }

            // The next slot to open, while some are still closed and migrations wait.
            double opens = slotsOpened < threads && firstPending < n ? (slotsOpened * stagger) - now : double.PositiveInfinity;
            if (active.Count == 0)
            {
                if (!double.IsPositiveInfinity(opens))
                {
                    now += Math.Max(0, opens);
                }

                continue;
            }

            double step = opens > Epsilon ? opens : double.PositiveInfinity;
            foreach (int m in active)
            {
                if (inSetup[m])
                {
                    step = Math.Min(step, remaining[m]);
                }
                else
                {
                    rate[m] = Math.Min(streamRate, Math.Min(linkRate / sourceTransfers[source[m]], linkRate / targetTransfers[target[m]]));
                    step = Math.Min(step, rate[m] > 0 ? remaining[m] / rate[m] : double.PositiveInfinity);
                }
            }

            if (double.IsPositiveInfinity(step))
            {
                // No bandwidth at all: nothing can finish. Report it as never ending rather than looping.
                for (int i = 0; i < n; i++)
                {
                    if (!finished[i])
                    {
                        done[i] = double.PositiveInfinity;
                    }
                }

                return done;
            }

            now += step;
            foreach (int m in active)
            {
                if (inSetup[m])
                {
                    remaining[m] = remaining[m] - step <= Epsilon * Math.Max(1, step) ? 0 : remaining[m] - step;
                }
                else
                {
                    double left = remaining[m] - (rate[m] * step);
                    remaining[m] = left <= Math.Max(1e-3, remaining[m] * 1e-12) ? 0 : left;
                }
            }
        }

        return done;

        void Finish(int m, int activeIndex)
        {
            done[m] = now;
            finished[m] = true;
            completed++;
            active.RemoveAt(activeIndex);
            sourceActive[source[m]]--;
            targetActive[target[m]]--;
            sourceTransfers[source[m]]--;
            targetTransfers[target[m]]--;
        }
    }

    /// <summary>How far apart the first migrations of a batch start (<see cref="PlanOptions.StaggerStarts"/>): the model's
    /// setup time shared out over the slots; 0 without it.</summary>
    public static double StaggerSeconds(PlanOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        int threads = Math.Max(1, options.Threads);
        return options.StaggerStarts && threads > 1 ? Math.Max(0, options.MigrationModel.SetupSeconds) / threads : 0;
    }

    /// <summary>
    /// A bound no schedule can beat: per wave, the slowest host's bytes leaving it over its link plus its downtime;
    /// the waves one after another; then the busiest source of the migrate-back over its link.
    /// </summary>
    public static double LowerBoundSeconds(Plan plan)
    {
        ArgumentNullException.ThrowIfNull(plan);
        var options = plan.Options;
        var model = options.MigrationModel;
        double link = model.HostLinkMBps * MigrationModel.BytesPerMB;
        double total = 0;
        foreach (var wave in plan.Steps.GroupBy(s => s.Wave).OrderBy(g => g.Key))
        {
            double slowest = 0;
            foreach (var step in wave)
            {
                long bytes = step.Migrations.Sum(m => model.WireBytes(m.MemoryBytes));
                slowest = Math.Max(slowest, (bytes / link) + HostDowntimeSeconds(options));
            }

            total += slowest;
        }

        if (plan.ReturnMigrations.Count > 0)
        {
            total += plan.ReturnMigrations
                .GroupBy(m => m.FromUuid, StringComparer.Ordinal)
                .Max(g => g.Sum(m => model.WireBytes(m.MemoryBytes)) / link);
        }

        return total;
    }

    /// <summary>Estimated seconds left when the run is about to start the step with this index (1-based).</summary>
    public static double RemainingSeconds(Plan plan, int nextStepIndex)
    {
        ArgumentNullException.ThrowIfNull(plan);
        var next = plan.Steps.FirstOrDefault(s => s.Index == nextStepIndex);
        if (next is null)
        {
            return nextStepIndex > plan.Steps.Count ? plan.Estimate.ReturnSeconds : plan.Estimate.TotalSeconds;
        }

        return plan.Estimate.TotalSeconds - next.StartSeconds;
    }

    private static int HostId(Dictionary<string, int> ids, string uuid)
    {
        if (!ids.TryGetValue(uuid, out int id))
        {
            id = ids.Count;
            ids.Add(uuid, id);
        }

        return id;
    }

    private static int CompareForStart(PlannedMigration a, PlannedMigration b, int ia, int ib)
    {
        int c = b.MemoryBytes.CompareTo(a.MemoryBytes);
        if (c == 0)
        {
            c = NaturalNameComparer.Instance.Compare(a.VmName, b.VmName);
        }

        if (c == 0)
        {
            c = string.CompareOrdinal(a.VmUuid, b.VmUuid);
        }

        return c != 0 ? c : ia.CompareTo(ib);
    }
}
