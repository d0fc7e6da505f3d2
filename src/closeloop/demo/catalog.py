"""The demo seller's catalogue (a medical-equipment maker), and what its partners sell."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class ProductSpec:
    code: str
    name: str
    list_price: Decimal
    unit: str
    lead_time_days: int
    #: how many a customer buys at once, lowest and highest
    quantity: tuple[int, int] = (1, 1)
    #: bought again and again (reagents, consumables, service renewals): what repurchases are made of
    is_recurring: bool = False


@dataclass(frozen=True, slots=True)
class ProductLineSpec:
    code: str
    name: str
    name_en: str
    description: str
    #: share of new deals, and the gross margin range in percent
    weight: float
    margin: tuple[int, int]
    products: tuple[ProductSpec, ...]


def _p(
    code: str, name: str, price: int, unit: str, lead: int, quantity: tuple[int, int] = (1, 1), recurring: bool = False
) -> ProductSpec:
    return ProductSpec(code, name, Decimal(price), unit, lead, quantity, recurring)


SELLER_CATALOG: tuple[ProductLineSpec, ...] = (
    ProductLineSpec(
        "IMG",
        "影像设备",
        "Imaging",
        "超声、DR、CT 与磁共振 Imaging systems",
        0.22,
        (28, 45),
        (
            _p("IMG-US-H7", "H7 高端彩色多普勒超声系统", 1_280_000, "台", 45),
            _p("IMG-US-P3", "P3 便携式彩超", 268_000, "台", 20, (1, 4)),
            _p("IMG-DR-560", "DR560 数字化X射线摄影系统", 890_000, "台", 60),
            _p("IMG-CT-64", "CT64 排螺旋CT", 4_600_000, "台", 120),
            _p("IMG-MR-15", "MR1.5T 超导磁共振", 8_900_000, "台", 180),
        ),
    ),
    ProductLineSpec(
        "IVD",
        "体外诊断",
        "IVD",
        "生化、免疫与试剂 In-vitro diagnostics",
        0.24,
        (35, 60),
        (
            _p("IVD-BC-800", "BC-800 全自动生化分析仪", 520_000, "台", 30, (1, 2)),
            _p("IVD-CL-2000", "CL-2000 化学发光免疫分析仪", 760_000, "台", 35),
            _p("IVD-RG-LIV", "肝功能检测试剂盒（100测试）", 1_800, "盒", 7, (50, 600), recurring=True),
            _p("IVD-RG-TUM", "肿瘤标志物检测试剂盒（100测试）", 4_200, "盒", 7, (20, 300), recurring=True),
            _p("IVD-QC-01", "质控品套装", 2_600, "套", 5, (10, 120), recurring=True),
        ),
    ),
    ProductLineSpec(
        "SUR",
        "手术器械",
        "Surgical",
        "腔镜、能量平台与吻合器 Surgical instruments",
        0.18,
        (32, 50),
        (
            _p("SUR-LAP-4K", "4K 腹腔镜摄像系统", 980_000, "套", 40),
            _p("SUR-ESU-300", "ESU-300 高频电外科工作站", 186_000, "台", 25, (1, 3)),
            _p("SUR-STP-60", "一次性腔镜直线切割吻合器", 3_200, "把", 10, (20, 400), recurring=True),
            _p("SUR-TRC-12", "一次性穿刺器（12mm）", 680, "个", 10, (50, 800), recurring=True),
        ),
    ),
    ProductLineSpec(
        "CON",
        "耗材",
        "Consumables",
        "导管、输注与敷料 Medical consumables",
        0.20,
        (18, 35),
        (
            _p("CON-CVC-2", "双腔中心静脉导管套件", 420, "套", 7, (200, 3000), recurring=True),
            _p("CON-INF-PUMP", "一次性输注泵", 260, "个", 7, (300, 5000), recurring=True),
            _p("CON-DRS-AG", "银离子抗菌敷料", 85, "片", 5, (1000, 20000), recurring=True),
            _p("CON-SYR-50", "50ml 注射泵专用注射器", 12, "支", 5, (5000, 60000), recurring=True),
        ),
    ),
    ProductLineSpec(
        "SW",
        "软件服务",
        "Software & service",
        "影像归档、检验信息系统与维保 Software and service",
        0.16,
        (45, 75),
        (
            _p("SW-PACS", "PACS 影像归档与通信系统", 680_000, "套", 60),
            _p("SW-LIS", "LIS 检验信息系统", 420_000, "套", 45),
            _p("SW-RMT", "设备远程运维平台（年）", 96_000, "年", 10, (1, 3), recurring=True),
            _p("SW-MNT", "年度维保服务合同", 150_000, "年", 5, (1, 2), recurring=True),
        ),
    ),
)

DEALER_CATALOG: tuple[ProductLineSpec, ...] = (
    ProductLineSpec(
        "RES",
        "代理产品",
        "Resold products",
        "华衡医疗授权代理产品 Products resold for Huaheng Medical",
        1.0,
        (8, 18),
        (
            _p("RES-P3", "P3 便携式彩超（代理）", 288_000, "台", 25, (1, 3)),
            _p("RES-ESU", "ESU-300 电外科工作站（代理）", 199_000, "台", 30),
            _p("RES-RG-LIV", "肝功能检测试剂盒（代理）", 1_950, "盒", 10, (20, 300), recurring=True),
            _p("RES-CVC", "中心静脉导管套件（代理）", 460, "套", 10, (100, 1500), recurring=True),
            _p("RES-DRS", "银离子抗菌敷料（代理）", 95, "片", 7, (500, 8000), recurring=True),
        ),
    ),
)

SERVICE_CATALOG: tuple[ProductLineSpec, ...] = (
    ProductLineSpec(
        "SVC",
        "技术服务",
        "Technical service",
        "安装、维修与保养 Installation, repair and maintenance",
        1.0,
        (25, 45),
        (
            _p("SVC-INST", "设备安装调试服务", 18_000, "次", 7, (1, 4)),
            _p("SVC-REP", "上门维修服务", 6_500, "次", 2, (1, 6), recurring=True),
            _p("SVC-PM", "年度预防性维护保养", 48_000, "年", 10, (1, 3), recurring=True),
            _p("SVC-TRN", "临床操作培训", 12_000, "场", 14, (1, 5)),
        ),
    ),
)
