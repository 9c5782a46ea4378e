using Microsoft.Extensions.Time.Testing;
using RollingReboot.Core.Time;

namespace RollingReboot.Core.Tests.Time;

public sealed class LocalTimesTests
{
    private static FakeTimeProvider Clock(DateTimeOffset now, TimeZoneInfo zone)
    {
        var clock = new FakeTimeProvider(now);
        clock.SetLocalTimeZone(zone);
        return clock;
    }

    private static DateTimeOffset Utc(string text) =>
        DateTimeOffset.ParseExact(text, "yyyy-MM-dd'T'HH:mm:ssK", System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.None);

    public static TheoryData<string, string, string> Cases => new()
    {
        // now (UTC), time of day (local, Amsterdam), expected moment (UTC)
        { "2026-11-22T22:00:00Z", "22:30", "2026-11-23T21:30:00Z" },   // 23:00 local: 22:30 has passed, so tomorrow
        { "2026-11-22T20:00:00Z", "22:30", "2026-11-22T21:30:00Z" },   // 21:00 local: later today
        { "2031-07-04T10:00:00Z", "04:00", "2031-07-05T02:00:00Z" },   // summer (CEST), years from the machine's date
        { "1999-01-15T23:30:00Z", "00:15", "1999-01-16T23:15:00Z" },   // 00:30 local on the 16th: 00:15 is tomorrow's
        // Spring forward, Sunday 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00 UTC).
        { "2026-03-28T23:00:00Z", "04:00", "2026-03-29T02:00:00Z" },   // only 23 h in that local day
        { "2026-03-28T23:00:00Z", "02:30", "2026-03-29T01:00:00Z" },   // 02:30 does not exist: the moment of the jump
        { "2026-03-29T00:30:00Z", "01:00", "2026-03-29T23:00:00Z" },   // 01:30 CET: next 01:00 is Monday's
        // Fall back, Sunday 2026-10-25: 03:00 CEST goes back to 02:00 CET (01:00 UTC).
        { "2026-10-24T23:00:00Z", "02:30", "2026-10-25T00:30:00Z" },   // 02:30 occurs twice: the first (CEST)
        { "2026-10-25T00:45:00Z", "02:30", "2026-10-25T01:30:00Z" },   // after the first 02:30: the second (CET)
        { "2026-10-25T00:00:00Z", "01:59", "2026-10-26T00:59:00Z" },   // 02:00 CEST: 01:59 is tomorrow, 25 h away
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void NextOccurrence_InAmsterdam_IsTheNextMomentTheLocalClockReadsIt(string now, string timeOfDay, string expected)
    {
        var clock = Clock(Utc(now), Zones.Amsterdam);
        var at = LocalTimes.NextOccurrence(TimeOnly.ParseExact(timeOfDay, "HH:mm", System.Globalization.CultureInfo.InvariantCulture), clock);
        Assert.Equal(Utc(expected), at);
    }

    [Fact]
    public void NextOccurrence_OnAnyDayOfAnyYear_IsAfterNowAndWithinOneLocalDay()
    {
        var start = new DateTimeOffset(1998, 1, 1, 0, 0, 0, TimeSpan.Zero);
        var times = new[] { new TimeOnly(0, 0), new TimeOnly(2, 30), new TimeOnly(4, 0), new TimeOnly(12, 0), new TimeOnly(23, 59) };
        foreach (var zone in new[] { Zones.Amsterdam, Zones.Chatham, TimeZoneInfo.Utc })
        {
            // Every 7 h 13 min over 40 years: every hour of the day, both DST changes of every year.
            for (var now = start; now < start.AddYears(40); now = now.AddMinutes(433))
            {
                var clock = Clock(now, zone);
                foreach (var t in times)
                {
                    var at = LocalTimes.NextOccurrence(t, clock);
                    Assert.True(at > now, $"{t} at {now:o} in {zone.Id}: {at:o} is not after now");
                    Assert.True(at - now <= TimeSpan.FromHours(25), $"{t} at {now:o} in {zone.Id}: {at:o} is more than a day ahead");
                    var local = TimeZoneInfo.ConvertTime(at, zone);
                    var skipped = zone.IsInvalidTime(DateOnly.FromDateTime(local.DateTime).ToDateTime(t));
                    Assert.True(skipped || TimeOnly.FromDateTime(local.DateTime) == t, $"{t} at {now:o}: local clock reads {local:o}");
                }
            }
        }
    }

    [Fact]
    public void AtLocal_IsInTheClocksZoneNotTheMachines()
    {
        var clock = Clock(new DateTimeOffset(2026, 7, 1, 0, 0, 0, TimeSpan.Zero), Zones.Chatham);
        Assert.Equal(new DateTimeOffset(2026, 7, 10, 4, 0, 0, new TimeSpan(12, 45, 0)),
            LocalTimes.AtLocal(new DateOnly(2026, 7, 10), new TimeOnly(4, 0), clock));
    }

    [Fact]
    public void TheBuiltAmsterdamZone_AgreesWithTheMachinesTzdata()
    {
        // CI installs tzdata (.ci/run); a developer machine without it fails here and says how to fix it.
        TimeZoneInfo system;
        try
        {
            system = TimeZoneInfo.FindSystemTimeZoneById("Europe/Amsterdam");
        }
        catch (TimeZoneNotFoundException)
        {
            Assert.Fail("tzdata is not installed (apt-get install tzdata); this test compares the built zone with it");
            return;
        }

        for (var t = new DateTimeOffset(2000, 1, 1, 0, 0, 0, TimeSpan.Zero); t.Year < 2037; t = t.AddHours(5))
        {
            Assert.Equal(system.GetUtcOffset(t), Zones.Amsterdam.GetUtcOffset(t));
        }
    }
}
