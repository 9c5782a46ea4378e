using System.Text.Json.Nodes;
using CsCheck;
using RollingReboot.Core.Run.Journal;
using RollingReboot.Core.Run.State;
using RollingReboot.Core.Tests.Run.Fakes;

namespace RollingReboot.Core.Tests.Run;

public sealed class JournalTests
{
    /// <summary>A journal exactly as the version before the typed log (a7f3a0d) wrote it: killed mid-reboot of h1.</summary>
    private static readonly string[] s_oldJournal =
    [
        """{"t":"2026-11-22T10:00:00.0000000+00:00","kind":"run.start","runId":"r1","pool":"pool-uuid","poolName":"P","cluster":"C","mode":"run"}""",
        """{"t":"2026-11-22T10:00:01.0000000+00:00","kind":"lock.intent","value":"{\"runId\":\"r1\"}"}""",
        """{"t":"2026-11-22T10:00:01.0000000+00:00","kind":"lock.acquired","key":"rollreboot-lock"}""",
        """{"t":"2026-11-22T10:00:02.0000000+00:00","kind":"originals","poolUuid":"pool-uuid","ha":{"enabled":true,"heartbeatSrs":["sr1"],"configuration":{"timeout":"180"},"hostFailuresToTolerate":1,"allowOvercommit":true},"cloudstackManagedState":"Managed","hostEnabled":{"h1":true,"h2":false},"vmHost":{"vm1":"h1"}}""",
        """{"t":"2026-11-22T10:00:03.0000000+00:00","kind":"ha.disable.intent"}""",
        """{"t":"2026-11-22T10:00:04.0000000+00:00","kind":"ha.disable.done"}""",
        """{"t":"2026-11-22T10:00:05.0000000+00:00","kind":"cloudstack.unmanage.intent","clusterId":"c1"}""",
        """{"t":"2026-11-22T10:00:05.0000000+00:00","kind":"cloudstack.unmanage.done"}""",
        """{"t":"2026-11-22T10:00:06.0000000+00:00","kind":"host.disable.intent","host":"h1","name":"xen1"}""",
        """{"t":"2026-11-22T10:00:06.0000000+00:00","kind":"host.disable.done","host":"h1"}""",
        """{"t":"2026-11-22T10:00:07.0000000+00:00","kind":"vm.migrate.intent","vm":"vm1","name":"web","from":"h1","to":"h3"}""",
        """{"t":"2026-11-22T10:00:09.0000000+00:00","kind":"vm.migrate.done","vm":"vm1","to":"h3"}""",
        """{"t":"2026-11-22T10:00:10.0000000+00:00","kind":"host.reboot.intent","host":"h1","name":"xen1","bootTime":1000,"serverTime":"2026-11-22T10:00:10.0000000+00:00","bootId":"b-1","halt":false}""",
    ];

    private static RunState Fold(IEnumerable<string> lines) => RunState.Fold(RunJournal.Read(new MemoryJournalStore(lines)));

    [Fact]
    public void Fold_JournalWrittenByThePreviousVersion_SaysWhatToRestore()
    {
        var state = Fold(s_oldJournal);
        Assert.Equal("r1", state.RunId);
        Assert.Equal("pool-uuid", state.PoolUuid);
        Assert.False(state.Ended);
        Assert.Equal(ChangeState.Made, state.Lock);
        Assert.Equal(ChangeState.Made, state.HaOff);
        Assert.Equal(ChangeState.Made, state.ClusterUnmanaged);
        Assert.Equal(["h1"], state.LeftDisabled.Select(h => h.Uuid));
        Assert.Equal(180, state.Original!.Ha.TimeoutSeconds);
        Assert.False(state.Original.HostEnabled["h2"]);
        var h1 = state.Host("h1");
        Assert.Equal(HostPhase.RebootRequested, h1.Phase);
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(1000), h1.Proof!.BootTimeBefore);
        Assert.Equal("b-1", h1.Proof.BootId);
        Assert.Empty(state.MigrationsInFlight);
    }

    [Fact]
    public void Fold_HostSkippedByItsPreHook_IsRememberedForResume()
    {
        var lines = s_oldJournal.Append("""{"t":"2026-11-22T10:01:00.0000000+00:00","kind":"host.skipped","host":"h2","name":"xen2","reason":"pre hook exit 70"}""");
        Assert.Equal(["h2"], Fold(lines).Skipped);
        Assert.Empty(Fold(s_oldJournal).Skipped);
    }

    [Fact]
    public void Serialize_ThenRead_GivesTheSameEvents()
    {
        RunEvent[] events =
        [
            new RunStarted("r2", "p", "P", "C", "evacuate"),
            new OriginalsRecorded("p", new HaRecord(true, ["sr"], new Dictionary<string, string> { ["timeout"] = "60" }, 2, false), "Managed",
                new Dictionary<string, bool> { ["h1"] = true }, new Dictionary<string, string?> { ["vm"] = "h1" }, "true"),
            new PlanDecided(3, ["h9"]),
            new RebootIntended("h1", "xen1", 42, "2026-11-22T10:00:10.0000000+00:00", "b", Halt: true),
            new HostFinished("h1", "xen1", true, 4, 1 << 30, 12.5, 300, 1, HostResult.SkippedByHook),
            new EvacuationMarkIntended("h1", "rollreboot-evacuated-h1"),
            new OperatorActionNeeded("do it"),
            new RunEnded("Done", "ok"),
        ];
        var at = new DateTimeOffset(2026, 11, 22, 10, 0, 0, TimeSpan.Zero);
        var store = new MemoryJournalStore(events.Select(e => RunJournal.Serialize(e, at)));
        var read = RunJournal.Read(store);
        Assert.Equal(events.Length, read.Count);
        for (var i = 0; i < events.Length; i++)
        {
            Assert.Equal(events[i].Kind, read[i].Kind);
            Assert.Equal(at, read[i].At);
            Assert.Equal(RunJournal.Serialize(events[i], at), RunJournal.Serialize(read[i], at));
        }
    }

    [Fact]
    public void Read_KindFromANewerVersion_IsKeptAndIgnoredByTheFold()
    {
        var lines = s_oldJournal.Append("""{"t":"2026-11-22T10:01:00.0000000+00:00","kind":"host.something.new","host":"h2"}""").ToList();
        var events = RunJournal.Read(new MemoryJournalStore(lines));
        Assert.Equal("host.something.new", Assert.IsType<UnknownEvent>(events[^1]).Kind);
        Assert.Equal(StateDigest.Of(Fold(s_oldJournal)), StateDigest.Of(RunState.Fold(events)));
    }

    [Fact]
    public void Read_TornLastLine_IsIgnored_CorruptMiddleLine_IsJournalException()
    {
        var lines = s_oldJournal.ToList();
        lines.Add("{\"t\":\"2026-");
        Assert.Equal(s_oldJournal.Length, RunJournal.Read(new MemoryJournalStore(lines)).Count);

        lines.Insert(2, "garbage");
        Assert.Throws<JournalException>(() => RunJournal.Read(new MemoryJournalStore(lines)));
    }

    [Fact]
    public void Read_NotARollrebootJournal_IsJournalException() =>
        Assert.Throws<JournalException>(() => RunJournal.Read(new MemoryJournalStore(["{\"kind\":\"something\"}"])));

    [Fact]
    public void ReadAndFold_Garbage_OnlyJournalException()
    {
        Gen.Select(Gen.Int[0, s_oldJournal.Length - 1], Gen.String, Gen.Int[0, 3]).Sample((index, junk, mode) =>
        {
            var lines = s_oldJournal.ToList();
            switch (mode)
            {
                case 0:
                    lines[index] = junk;
                    break;
                case 1:
                    // Same JSON shape, fields of the wrong type.
                    var o = JsonNode.Parse(lines[index])!.AsObject();
                    foreach (var key in o.Select(kv => kv.Key).ToList())
                    {
                        if (key != "kind")
                        {
                            o[key] = junk;
                        }
                    }

                    lines[index] = o.ToJsonString();
                    break;
                case 2:
                    lines.Insert(index, junk);
                    break;
                default:
                    lines[index] = lines[index][..Math.Min(lines[index].Length, junk.Length)];
                    break;
            }

            try
            {
                Fold(lines);
            }
            catch (JournalException)
            {
            }
        }, iter: 2000);
    }
}
