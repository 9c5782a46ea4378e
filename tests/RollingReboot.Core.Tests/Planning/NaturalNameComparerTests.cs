using RollingReboot.Core.Planning;

namespace RollingReboot.Core.Tests.Planning;

public class NaturalNameComparerTests
{
    [Fact]
    public void Sort_NumbersByValue_ThenOrdinal()
    {
        string[] names = ["xen10", "xen2", "xen1", "xen02", "Xen3", "xen", "i-2-10-VM", "i-2-9-VM"];

        var sorted = names.Order(NaturalNameComparer.Instance).ToList();

        Assert.Equal(["Xen3", "i-2-9-VM", "i-2-10-VM", "xen", "xen1", "xen02", "xen2", "xen10"], sorted);
    }

    [Fact]
    public void Compare_IsATotalOrder()
    {
        var c = NaturalNameComparer.Instance;
        Assert.NotEqual(0, c.Compare("a01", "a1"));
        Assert.Equal(-c.Compare("a01", "a1"), c.Compare("a1", "a01"));
        Assert.Equal(0, c.Compare("a1", "a1"));
        Assert.True(c.Compare(null, "a") < 0);
    }
}
