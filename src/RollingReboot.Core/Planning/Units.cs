using System.Globalization;

namespace RollingReboot.Core.Planning;

/// <summary>Memory and durations written the way an operator reads them, independent of the culture.</summary>
public static class Units
{
    private const double MiB = 1024.0 * 1024.0;
    private const double GiB = MiB * 1024.0;
    private const double TiB = GiB * 1024.0;

    public static string Memory(long bytes)
    {
        double abs = Math.Abs((double)bytes);
        return abs >= TiB ? string.Create(CultureInfo.InvariantCulture, $"{bytes / TiB:0.00} TiB")
            : abs >= GiB ? string.Create(CultureInfo.InvariantCulture, $"{bytes / GiB:0.0} GiB")
            : string.Create(CultureInfo.InvariantCulture, $"{bytes / MiB:0} MiB");
    }

    /// <summary>h:mm:ss, rounded up to the next second.</summary>
    public static string Duration(double seconds)
    {
        long s = (long)Math.Ceiling(Math.Max(0, seconds) - 1e-9);
        return string.Create(CultureInfo.InvariantCulture, $"{s / 3600}:{s / 60 % 60:00}:{s % 60:00}");
    }
}
