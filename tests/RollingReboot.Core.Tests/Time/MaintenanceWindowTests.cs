using System.Globalization;
using RollingReboot.Core.Time;

namespace RollingReboot.Core.Tests.Time;

public sealed class MaintenanceWindowTests
{
    private static DateTimeOffset Utc(string text) =>
        DateTimeOffset.ParseExact(text, "yyyy-MM-dd'T'HH:mmK", CultureInfo.InvariantCulture, DateTimeStyles.None);

    /// <summary>A window in (custom-built) Amsterdam: the text names no zone, so the default one is taken.</summary>
    private static MaintenanceWindow Amsterdam(string text)
    {
        Assert.True(MaintenanceWindow.TryParse(text, Zones.Amsterdam, out var window, out var error), error);
        return window!;
    }

    private static string Error(string text)
    {
        Assert.False(MaintenanceWindow.TryParse(text, TimeZoneInfo.Utc, out var window, out var error));
        Assert.Null(window);
        return error;
    }

    [Theory]
    [InlineData("Sat,Sun 01:00-05:00", "Sat,Sun 01:00-05:00 Europe/Amsterdam")]
    [InlineData("Mon-Fri 22:00-02:00", "Mon,Tue,Wed,Thu,Fri 22:00-02:00 Europe/Amsterdam")]
    [InlineData("fri-mon 1:30-4:00", "Mon,Fri,Sat,Sun 01:30-04:00 Europe/Amsterdam")]
    [InlineData("Saturday,tue 00:00-24:00", "Tue,Sat 00:00-24:00 Europe/Amsterdam")]
    [InlineData("03:00-04:00", "03:00-04:00 Europe/Amsterdam")]
    public void Parse_DaysListsRangesAndTimes_AreReadAsWritten(string text, string described) =>
        Assert.Equal(described, Amsterdam(text).Describe());

    [Fact]
    public void Parse_AnIanaZone_IsTheMachinesTzdataZone()
    {
        Assert.True(MaintenanceWindow.TryParse("Sat,Sun 01:00-05:00 Europe/Amsterdam", TimeZoneInfo.Utc, out var window, out var error), error);
        Assert.Equal("Europe/Amsterdam", window!.Zone.Id);
        Assert.True(window.ZoneGiven);
        // 2026-11-28 is a Saturday; 01:00 CET is 00:00 UTC.
        Assert.Equal(new WindowOpening(Utc("2026-11-28T00:00Z"), Utc("2026-11-28T04:00Z")), window.CurrentOrNext(Utc("2026-11-25T12:00Z")));
    }

    [Theory]
    [InlineData("Sat,Sun", "no time range")]
    [InlineData("Sat,Xyz 01:00-05:00", "day 'Xyz' is not a day of the week")]
    [InlineData("Mon-Frx 01:00-05:00", "day 'Frx' is not a day of the week")]
    [InlineData("Sat 25:00-05:00", "start time '25:00' is not a time of day")]
    [InlineData("Sat 01:00-05:61", "end time '05:61' is not a time of day")]
    [InlineData("Sat 01:00-01:00", "starts and ends at 01:00")]
    [InlineData("Sat 01:00-05:00 Mars/Olympus", "time zone 'Mars/Olympus' is not known")]
    [InlineData("Sat Sun 01:00-05:00", "is not [DAYS] HH:MM-HH:MM [ZONE]")]
    [InlineData("Sat 01:00-05:00 UTC extra", "is not [DAYS] HH:MM-HH:MM [ZONE]")]
    public void Parse_Garbage_SaysWhichPartIsWrong(string text, string expected) =>
        Assert.Contains(expected, Error(text), StringComparison.Ordinal);

    public static TheoryData<string, string, string?, string, string> Openings => new()
    {
        // window, now (UTC), the opening now is in (start UTC; null: closed), next/current start, its end (UTC)
        // Saturday 2026-11-28 02:00 CET: inside Sat 01:00-05:00.
        { "Sat,Sun 01:00-05:00", "2026-11-28T01:00Z", "2026-11-28T00:00Z", "2026-11-28T00:00Z", "2026-11-28T04:00Z" },
        // Wednesday: closed, next opening Saturday.
        { "Sat,Sun 01:00-05:00", "2026-11-25T01:00Z", null, "2026-11-28T00:00Z", "2026-11-28T04:00Z" },
        // Sunday 05:00 CET exactly: the end is not in the opening; next Saturday.
        { "Sat,Sun 01:00-05:00", "2026-11-29T04:00Z", null, "2026-12-05T00:00Z", "2026-12-05T04:00Z" },
        // Across midnight: Friday 22:00 to Saturday 02:00 belongs to Friday; Saturday 01:00 CET is inside it.
        { "Fri 22:00-02:00", "2026-11-28T00:00Z", "2026-11-27T21:00Z", "2026-11-27T21:00Z", "2026-11-28T01:00Z" },
        // Saturday 22:30: no Saturday opening.
        { "Fri 22:00-02:00", "2026-11-28T21:30Z", null, "2026-12-04T21:00Z", "2026-12-05T01:00Z" },
        // Spring forward (Sunday 2026-03-29, 02:00 CET jumps to 03:00 CEST): a 02:30 start opens at the jump.
        { "Sun 02:30-05:00", "2026-03-28T12:00Z", null, "2026-03-29T01:00Z", "2026-03-29T03:00Z" },
        // Summer time: 01:00 CEST is 23:00 UTC the day before.
        { "Sat 01:00-05:00", "2031-07-04T12:00Z", null, "2031-07-04T23:00Z", "2031-07-05T03:00Z" },
        // Fall back (Sunday 2026-10-25, 03:00 CEST back to 02:00 CET): 01:00-04:00 lasts 4 h.
        { "Sun 01:00-04:00", "2026-10-24T12:00Z", null, "2026-10-24T23:00Z", "2026-10-25T03:00Z" },
        // Every day, until midnight.
        { "20:00-24:00", "2026-11-25T22:30Z", "2026-11-25T19:00Z", "2026-11-25T19:00Z", "2026-11-25T23:00Z" },
    };

    [Theory]
    [MemberData(nameof(Openings))]
    public void Openings_AreReadInTheWindowsZone_OnTheGivenDate(string text, string now, string? inside, string start, string end)
    {
        var window = Amsterdam(text);
        var at = Utc(now);
        Assert.Equal(inside is null ? null : Utc(inside), window.OpeningAt(at)?.Start);
        Assert.Equal(new WindowOpening(Utc(start), Utc(end)), window.CurrentOrNext(at));
    }

    [Fact]
    public void Local_SaysTheDayAndOffsetOfTheWindowsZone() =>
        Assert.Equal("Sat 2026-11-28 01:00 +01:00", Amsterdam("Sat 01:00-05:00").Local(Utc("2026-11-28T00:00Z")));
}
